package hooks

import (
	"net/http"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/identity"
	"github.com/realmhook/realmhook/realms"
)

// The policies of realmhook's own routes; the identity layer applies them.
var (
	// The tenant API and the app's routes: the pinned realm only, from the
	// tenant cache (the routed request path); frontend tokens per route.
	// A Forge installation's first invocation pins it to the realm called.
	tenantAPIPolicy = identity.Policy{Kind: identity.ConnectHS256, AllowContextQSH: true, Realm: identity.PinnedRealm, Lookup: identity.Cached, PinForge: true}
	// enabled, disabled: the pinned realm, read fresh (they change state).
	lifecyclePolicy = identity.Policy{Kind: identity.ConnectHS256, Realm: identity.PinnedRealm}
	// /schedule, /start, /commit, /rollback: any realm's base URL, fresh.
	migrationPolicy = identity.Policy{Kind: identity.ConnectHS256, Realm: identity.AnyRealm}
	// /status is polled, often by many: any realm, from the tenant cache;
	// while the databases do not answer, from the tenant last seen here.
	statusPolicy = identity.Policy{Kind: identity.ConnectHS256, Realm: identity.AnyRealm, Lookup: identity.Cached, LastSeen: true}
	// installed, uninstalled: the signed install.
	installPolicy = identity.Policy{Kind: identity.SignedInstall}
)

// calledRealm is the realm a request was addressed to, as instrument
// resolved it.
func (s *Server) calledRealm(r *http.Request) (*realms.Realm, error) {
	realm, ok := r.Context().Value(calledRealmKey).(*realms.Realm)
	if !ok {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "no realm served at %s%s", r.Host, r.URL.Path)
	}
	return realm, nil
}

// authenticate asks the identity layer who is calling the realm the request
// came to, under a route's policy, and names the tenant in the access log.
func (s *Server) authenticate(r *http.Request, p identity.Policy) (*identity.Identity, error) {
	called, err := s.calledRealm(r)
	if err != nil {
		return nil, err
	}
	id, err := s.ident.Authenticate(r, called, p)
	if err != nil {
		return nil, err
	}
	if id.Home != nil {
		noteTenant(r, id.ClientKey, id.Home.Key)
	}
	return id, nil
}
