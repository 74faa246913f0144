package server_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/config"
	"github.com/realmhook/realmhook/internalauth"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/server"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/transfer"
)

// TestInternalHandler_Transfer: the internal API serves the transfer
// service for each served realm, behind the internal token: a client of
// realm EU writes into EU's database through it, and a token for a realm
// not served is refused.
func TestInternalHandler_Transfer(t *testing.T) {
	cfg := config.Default()
	// Default put every realm's database under ./data; the test's own go
	// to its temporary directory.
	dir := t.TempDir()
	cfg.DataDir = dir
	for key, r := range cfg.Realms {
		r.Database = "sqlite:" + filepath.Join(dir, key+".db")
		cfg.Realms[key] = r
	}
	cfg.Internal.Secret = "internal handler test secret"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rh, err := server.New(t.Context(), cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer rh.Close()
	srv := httptest.NewServer(rh.InternalHandler())
	defer srv.Close()

	signer := internalauth.Signer{Secret: []byte(cfg.Internal.Secret), Issuer: "US"}
	eu := transfer.NewClient("EU", srv.URL, srv.Client(), signer)
	ctx := migration.WithFence(t.Context(), 1)
	tn := &realmhook.Tenant{ClientKey: "tenant-x", SharedSecret: "s", State: realmhook.TenantActive}
	if err := eu.PrepareIncoming(ctx, tn, "m-1"); err != nil {
		t.Fatalf("PrepareIncoming through the internal API: %v", err)
	}
	r, _ := rh.Realms().Get("EU")
	got, err := r.Store.GetTenant(t.Context(), "tenant-x")
	if err != nil || got.State != realmhook.TenantIncoming {
		t.Fatalf("EU's database holds %+v, %v; want the tenant incoming", got, err)
	}
	other := transfer.NewClient("AU", srv.URL, srv.Client(), signer)
	if err := other.CheckTables(ctx, []store.Table{store.PropertiesTable}); realmhook.ErrorCode(err) != realmhook.EUNAUTHORIZED {
		t.Fatalf("a call for a realm not served here: %v, want EUNAUTHORIZED", err)
	}
}
