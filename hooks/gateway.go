package hooks

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/gateway"
	"github.com/realmhook/realmhook/identity"
)

// gatewayPolicy is the tenant API's, frontend tokens included, but with the
// tenant read from the database: the identity token's frozen and the write
// freeze must be what every replica sees at once, not a cache's view.
var gatewayPolicy = func() identity.Policy {
	p := tenantAPIPolicy
	p.Lookup = identity.Fresh
	return p
}()

// toUpstream answers a request that is none of realmhook's routes: under a
// realm with an upstream it is the app's, refused here or forwarded there.
// Nothing is forwarded that the tenant API would refuse: a path that could
// mean two things, a missing or bad token, a tenant of another realm, a
// write while frozen.
func (s *Server) toUpstream(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	realm, err := s.calledRealm(r)
	if err != nil || !s.gateway.Serves(realm.Key) {
		s.notFound(w, r)
		return
	}
	w.Header().Set("X-Realm", realm.Key)
	if err := gateway.CheckPath(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	path, rawPath := gateway.RelativePath(r, realm.BasePath())
	target := gateway.Target{Realm: realm.Key, Path: path, RawPath: rawPath}
	if s.gateway.Public(path) {
		s.gateway.Forward(w, r, target)
		return
	}
	auth, err := s.authenticate(r, gatewayPolicy)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := writeFreeze(auth.Tenant, r.Method); err != nil {
		s.writeError(w, r, err)
		return
	}
	token := auth.Token()
	target.Identity = &token
	s.gateway.Forward(w, r, target)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, realmhook.Errorf(realmhook.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path))
}

// writeFreeze refuses a write (EMIGRATING) to a tenant a migration holds
// frozen; t must be a fresh read.
func writeFreeze(t *realmhook.Tenant, method string) error {
	if !t.Frozen() || safeMethod(method) {
		return nil
	}
	return realmhook.Errorf(realmhook.EMIGRATING, "tenant %q is read-only while migration %s runs", t.ClientKey, t.MigrationID).
		With("migrationId", t.MigrationID)
}
