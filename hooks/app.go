package hooks

import (
	"context"
	"database/sql"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/realms"
)

// AppRoute says how App treats one of the app's own routes.
type AppRoute struct {
	// FrontendTokens accepts tokens the app's own frontend mints (qsh
	// "context-qsh"), as the tenant API does; false accepts only tokens
	// whose qsh covers the request.
	FrontendTokens bool
	// WritesWhileFrozen lets POST, PUT, PATCH and DELETE through while a
	// migration freezes the tenant. By default they are answered 409
	// (tenant_migrating): the source realm must not change during a copy.
	WritesWhileFrozen bool
}

// Caller is a verified call of a tenant to the realm that holds it: what
// App puts on the request for the app's handler.
type Caller struct {
	Tenant *realmhook.Tenant
	Realm  *realms.Realm
	// DB is the realm's database, where the app keeps its tenant tables
	// (declared in config `tables`, so migrations move them).
	DB *sql.DB
}

type callerKey struct{}

// CallerFrom returns the Caller App verified for this request.
func CallerFrom(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(*Caller)
	return c, ok
}

// App wraps a handler of the app's own: it finds the realm the request came
// to, verifies the Connect JWT relative to that realm's base URL (the qsh
// covers the path as received), and answers itself with 401 for a missing or
// bad token, 421 naming the right realm for a tenant that lives elsewhere,
// and 409 for a write while the tenant is frozen (per route). The handler
// finds the Caller with CallerFrom. Answers carry X-Realm and X-Request-Id,
// and are counted and logged like realmhook's own (route label "app").
func (s *Server) App(route AppRoute, next http.Handler) http.Handler {
	h := s.instrument("app", func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		realm, err := s.calledRealm(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("X-Realm", realm.Key)
		ctx := r.Context()
		policy := tenantAPIPolicy
		policy.AllowContextQSH = route.FrontendTokens
		auth, err := s.authenticate(r, policy)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !route.WritesWhileFrozen && !safeMethod(r.Method) {
			// A fresh read, not the cache: a freeze another replica made a
			// moment ago must stop this write.
			t, err := realm.Store.GetTenant(ctx, auth.Tenant.ClientKey)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			if err := writeFreeze(t, r.Method); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		db, err := realm.SQLDB()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, callerKey{}, &Caller{Tenant: auth.Tenant, Realm: realm, DB: db})))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(w, r, nil) })
}

func safeMethod(m string) bool {
	switch strings.ToUpper(m) {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}
