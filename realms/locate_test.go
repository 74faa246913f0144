package realms

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/sqlite"
)

// fakeServed marks a realm served in tests that never touch its store.
type fakeServed struct{ store.Store }

func mustSQLiteRealm(t *testing.T, key string) *Realm {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), key+".db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r, err := NewRealm(key, "http://h/realms/"+key, s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistry_Locate(t *testing.T) {
	ctx := context.Background()
	eu, us := mustSQLiteRealm(t, "EU"), mustSQLiteRealm(t, "US")
	g, err := NewRegistry(eu, us)
	if err != nil {
		t.Fatal(err)
	}
	put := func(r *Realm, state realmhook.TenantState, migrationID string) {
		t.Helper()
		if err := r.Store.PutTenant(ctx, &realmhook.Tenant{ClientKey: "c1", SharedSecret: "s", State: state, MigrationID: migrationID}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("Unknown", func(t *testing.T) {
		if _, _, err := g.Locate(ctx, "c1"); realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
			t.Fatalf("err %v, want ENOTFOUND", err)
		}
	})
	t.Run("ActiveInOne", func(t *testing.T) {
		put(eu, realmhook.TenantActive, "m1")
		put(us, realmhook.TenantIncoming, "")
		r, tn, err := g.Locate(ctx, "c1")
		if err != nil || r.Key != "EU" || tn.ClientKey != "c1" {
			t.Fatalf("Locate = %v %v %v, want EU", r, tn, err)
		}
	})
	t.Run("MidCommitTargetWins", func(t *testing.T) {
		put(us, realmhook.TenantActive, "")
		r, _, err := g.Locate(ctx, "c1")
		if err != nil || r.Key != "US" {
			t.Fatalf("Locate = %v %v, want US (the unfrozen record)", r, err)
		}
	})
	t.Run("MovedIsNotActive", func(t *testing.T) {
		put(eu, realmhook.TenantMoved, "")
		r, _, err := g.Locate(ctx, "c1")
		if err != nil || r.Key != "US" {
			t.Fatalf("Locate = %v %v, want US", r, err)
		}
	})
}
