package server

import (
	"context"
	"net/http"

	"github.com/realmhook/realmhook/hooks"
)

// Route says how the middleware treats one of the app's routes: whether
// frontend tokens (context-qsh) are accepted, and whether writes are let
// through while a migration freezes the tenant (by default they get 409).
type Route = hooks.AppRoute

// Caller is what the middleware puts on a verified request: the tenant, the
// realm that holds it, and that realm's *sql.DB for the app's own tables.
type Caller = hooks.Caller

// CallerFrom returns the Caller the middleware verified for this request.
func CallerFrom(ctx context.Context) (*Caller, bool) { return hooks.CallerFrom(ctx) }

// Middleware is the app's equivalent of atlassian-connect-express's
// addon.authenticate(): it verifies the Connect JWT relative to the base URL
// of the realm the request came to, answers 401, 421 (the tenant lives in
// another realm; the body names it) and 409 (a write while the tenant is
// frozen, unless route allows it) itself, and passes the rest to next with
// a Caller on the context.
func (s *Server) Middleware(route Route) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return s.hooks.App(route, next) }
}

// Mount registers h under every served realm's base path behind the
// middleware: pattern "/notes/" answers {realm base URL}/notes/ for each
// realm. h sees the path relative to the realm's base URL; the token was
// verified against the path as received.
func (s *Server) Mount(mux *http.ServeMux, pattern string, route Route, h http.Handler) {
	for _, base := range s.registry.BasePaths() {
		mux.Handle(base+pattern, s.Middleware(route)(http.StripPrefix(base, h)))
	}
}
