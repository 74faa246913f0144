package hooks

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/gateway"
)

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
	// The tenant API's policy: the tenant from the realm's cache, as for
	// every routed request.
	auth, err := s.authenticate(r, tenantAPIPolicy)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tenant := auth.Tenant
	if !safeMethod(r.Method) {
		// A write is decided by a fresh read, not the cache: a freeze
		// another replica made a moment ago must stop it. A read passes
		// either way; its frozen claim is the cache's, at most
		// realms.MaxStale late.
		if tenant, err = realm.Store.GetTenant(r.Context(), auth.ClientKey); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := writeFreeze(tenant, r.Method); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	token := auth.Token()
	token.Frozen = tenant.Frozen()
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
