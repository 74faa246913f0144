package server_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/realmhook/realmhook/server"
)

// A Go app embeds realmhook: one process serves realmhook's routes and the
// app's own, which the middleware guards and routes to the tenant's realm.
func Example() {
	ctx := context.Background()
	rh, err := server.Load(ctx, "realmhook.yaml", server.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer rh.Close()
	go func() { _ = rh.Run(ctx) }() // the migration engine

	mux := http.NewServeMux()
	mux.Handle("/", rh.Handler())
	rh.Mount(mux, "/hello", server.Route{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := server.CallerFrom(r.Context())
		var n int
		// c.DB is the tenant's realm's database.
		_ = c.DB.QueryRowContext(r.Context(), `SELECT COUNT(*) FROM notes WHERE tenant = $1`, c.Tenant.ClientKey).Scan(&n)
		fmt.Fprintf(w, "hello %s in realm %s: %d notes\n", c.Tenant.ClientKey, c.Realm.Key, n)
	}))
	log.Fatal(http.ListenAndServe(rh.Config().Listen, mux))
}

// Middleware wraps a single handler, for an app with its own router.
func ExampleServer_Middleware() {
	var rh *server.Server // from server.New or server.Load
	notes := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := server.CallerFrom(r.Context())
		fmt.Fprintln(w, c.Tenant.ClientKey)
	})
	// Writes are refused with 409 while a migration copies the tenant; a
	// route that must stay writable says so.
	guarded := rh.Middleware(server.Route{FrontendTokens: true})(notes)
	http.Handle("/realms/eu/notes", guarded)
}
