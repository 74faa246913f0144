package realms

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/integration/pgtest"
	"github.com/realmhook/realmhook/secrets"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/postgres"
	"github.com/realmhook/realmhook/store/sqlite"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fakeClock is a replica's clock, moved by the test only.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// replica is one process's view of a realm whose database it shares.
type replica struct {
	realm *Realm
	clock *fakeClock
}

func mustReplica(t *testing.T, s store.Store) replica {
	t.Helper()
	t.Cleanup(func() { s.Close() })
	r, err := NewRealm("EU", "http://h/realms/eu", s)
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	r.tenants.now = c.now
	return replica{realm: r, clock: c}
}

func mustTenant(t *testing.T, r replica, key string) *realmhook.Tenant {
	t.Helper()
	tn, err := r.realm.Tenant(t.Context(), key)
	if err != nil {
		t.Fatalf("Tenant(%s): %v", key, err)
	}
	return tn
}

// TestTenantCache_TwoReplicas: two replicas on one database, each caching.
// The replica that writes a record sees it at once; the other sees it once
// MaxStale has passed on its clock, never later, and at once when it asks
// for a fresh read.
func TestTenantCache_TwoReplicas(t *testing.T) {
	if MaxStale >= time.Second {
		t.Fatalf("MaxStale %s: a change must reach every replica within 1s", MaxStale)
	}
	backends := map[string]func(t *testing.T) (store.Store, store.Store){
		"SQLite": func(t *testing.T) (store.Store, store.Store) {
			path := filepath.Join(t.TempDir(), "eu.db")
			return mustOpenSQLite(t, path), mustOpenSQLite(t, path)
		},
		"Postgres": func(t *testing.T) (store.Store, store.Store) {
			url := pgtest.NewDatabase(t)
			return mustOpenPostgres(t, url), mustOpenPostgres(t, url)
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			sa, sb := open(t)
			a, b := mustReplica(t, sa), mustReplica(t, sb)
			tn := &realmhook.Tenant{ClientKey: "c1", SharedSecret: "old", State: realmhook.TenantActive}
			if err := a.realm.Store.PutTenant(ctx, tn); err != nil {
				t.Fatal(err)
			}
			mustTenant(t, a, "c1")
			mustTenant(t, b, "c1")

			// A freezes the tenant.
			if _, err := a.realm.Store.UpdateTenant(ctx, "c1", func(t *realmhook.Tenant) error { t.MigrationID = "m1"; return nil }); err != nil {
				t.Fatal(err)
			}
			if got := mustTenant(t, a, "c1"); !got.Frozen() {
				t.Fatal("the replica that froze the tenant does not see it frozen")
			}
			b.clock.advance(MaxStale - time.Millisecond)
			if got := mustTenant(t, b, "c1"); got.Frozen() {
				t.Fatal("the cache read the database before MaxStale passed: it caches nothing")
			}
			b.clock.advance(time.Millisecond)
			if got := mustTenant(t, b, "c1"); !got.Frozen() {
				t.Fatalf("the other replica does not see the freeze %s after the last check", MaxStale)
			}

			// A re-install's new secret: B's refresh sees it at once.
			tn.SharedSecret = "new"
			if err := a.realm.Store.PutTenant(ctx, tn); err != nil {
				t.Fatal(err)
			}
			if got := mustTenant(t, b, "c1"); got.SharedSecret != "old" {
				t.Fatal("the cache read the database before MaxStale passed")
			}
			got, err := b.realm.RefreshTenant(ctx, "c1")
			if err != nil || got.SharedSecret != "new" {
				t.Fatalf("RefreshTenant = %+v, %v; want the new secret", got, err)
			}
			if got := mustTenant(t, b, "c1"); got.SharedSecret != "new" {
				t.Fatal("the refreshed record is not what the cache answers next")
			}

			// A tenant B knows to be absent is installed on A.
			if _, err := b.realm.Tenant(ctx, "c2"); realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
				t.Fatalf("Tenant(c2) = %v, want ENOTFOUND", err)
			}
			if err := a.realm.Store.PutTenant(ctx, &realmhook.Tenant{ClientKey: "c2", SharedSecret: "s", State: realmhook.TenantActive}); err != nil {
				t.Fatal(err)
			}
			b.clock.advance(MaxStale)
			mustTenant(t, b, "c2")

			// A deletes the record.
			if err := a.realm.Store.DeleteTenant(ctx, "c1"); err != nil {
				t.Fatal(err)
			}
			if _, err := a.realm.Tenant(ctx, "c1"); realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
				t.Fatalf("A after its own delete: %v, want ENOTFOUND", err)
			}
			b.clock.advance(MaxStale)
			if _, err := b.realm.Tenant(ctx, "c1"); realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
				t.Fatalf("B after A's delete: %v, want ENOTFOUND", err)
			}
		})
	}
}

func mustOpenSQLite(t *testing.T, path string) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustOpenPostgres(t *testing.T, url string) store.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// countingStore counts the tenant reads that reach the database.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	reads int
}

func (c *countingStore) GetTenant(ctx context.Context, clientKey string) (*realmhook.Tenant, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.Store.GetTenant(ctx, clientKey)
}

// TestLocateCached_CostsALookup: a tenant polled again and again (a /status
// poller, a tenant's API calls) is read from each realm's database once, not
// once per call, and a tenant absent from a realm is remembered absent.
func TestLocateCached_CostsALookup(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	var counters []*countingStore
	var list []*Realm
	for _, key := range []string{"EU", "US", "global"} {
		c := &countingStore{Store: mustOpenSQLite(t, filepath.Join(dir, key+".db"))}
		t.Cleanup(func() { c.Close() })
		r, err := NewRealm(key, "http://h/realms/"+key, c)
		if err != nil {
			t.Fatal(err)
		}
		counters, list = append(counters, c), append(list, r)
	}
	g, err := NewRegistry(list...)
	if err != nil {
		t.Fatal(err)
	}
	eu, _ := g.Get("EU")
	if err := eu.Store.PutTenant(ctx, &realmhook.Tenant{ClientKey: "c1", SharedSecret: "s", State: realmhook.TenantActive}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		home, _, err := g.LocateCached(ctx, "c1")
		if err != nil || home.Key != "EU" {
			t.Fatalf("LocateCached = %v, %v; want EU", home, err)
		}
	}
	for i, c := range counters {
		if c.reads != 1 {
			t.Errorf("realm %s: %d tenant reads for 100 lookups, want 1", list[i].Key, c.reads)
		}
	}
}

// TestRealm_SQLDBThroughWrappers: a realm whose store is wrapped (secrets
// sealing) still gives the app its database.
func TestRealm_SQLDBThroughWrappers(t *testing.T) {
	s := mustOpenSQLite(t, filepath.Join(t.TempDir(), "eu.db"))
	t.Cleanup(func() { s.Close() })
	r, err := NewRealm("EU", "http://h/realms/eu", secrets.Store(s, mustKeyring(t)))
	if err != nil {
		t.Fatal(err)
	}
	db, err := r.SQLDB()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
}

func mustKeyring(t *testing.T) *secrets.Keyring {
	t.Helper()
	ring, err := secrets.NewKeyring(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return ring
}
