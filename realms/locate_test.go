package realms

import (
	"context"
	"fmt"
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

// TestRegistry_LocatePrecedence: over every pair of records in two realms,
// Locate picks by state (active, unfrozen before frozen; nothing else
// serves), not by the order the realms are asked in or the order a commit
// writes them.
func TestRegistry_LocatePrecedence(t *testing.T) {
	ctx := context.Background()
	type rec struct {
		state  realmhook.TenantState
		frozen bool
	}
	var recs []rec
	for _, s := range realmhook.TenantStates {
		recs = append(recs, rec{s, false}, rec{s, true})
	}
	rank := func(r rec) int { // written out apart from locateRank
		switch {
		case r.state != realmhook.TenantActive:
			return 0
		case r.frozen:
			return 1
		}
		return 2
	}
	eu, us := mustSQLiteRealm(t, "EU"), mustSQLiteRealm(t, "US")
	for _, order := range [][]*Realm{{eu, us}, {us, eu}} {
		g, err := NewRegistry(order...)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range recs {
			for _, b := range recs {
				name := fmt.Sprintf("%s:EU=%s,%v/US=%s,%v", order[0].Key, a.state, a.frozen, b.state, b.frozen)
				t.Run(name, func(t *testing.T) {
					for realm, r := range map[*Realm]rec{eu: a, us: b} {
						tn := &realmhook.Tenant{ClientKey: "c1", SharedSecret: "s", State: r.state}
						if r.frozen {
							tn.MigrationID = "m1"
						}
						if err := realm.Store.PutTenant(ctx, tn); err != nil {
							t.Fatal(err)
						}
					}
					want := ""
					switch ra, rb := rank(a), rank(b); {
					case ra == 0 && rb == 0:
					case ra >= rb: // a tie goes to the lower key, EU
						want = "EU"
					default:
						want = "US"
					}
					got, _, err := g.Locate(ctx, "c1")
					switch {
					case want == "" && realmhook.ErrorCode(err) != realmhook.ENOTFOUND:
						t.Fatalf("Locate = %v, %v; want ENOTFOUND", got, err)
					case want != "" && (err != nil || got.Key != want):
						t.Fatalf("Locate = %v, %v; want %s", got, err, want)
					}
				})
			}
		}
	}
}
