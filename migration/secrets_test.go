package migration

import (
	"bytes"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/secrets"
)

// TestMigrationResealsSecretForTarget: between realms with different keys,
// the target gets the tenant's secret sealed with its own key (and only it
// opens it there), and the tenant keeps its secret.
func TestMigrationResealsSecretForTarget(t *testing.T) {
	e := newEnv(t, "EU", "US")
	ring := func(b byte) *secrets.Keyring {
		r, err := secrets.NewKeyring(bytes.Repeat([]byte{b}, secrets.KeyBytes))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	euRing, usRing := ring(1), ring(2)
	e.stores["EU"] = secrets.Store(e.stores["EU"], euRing)
	e.stores["US"] = secrets.Store(e.stores["US"], usRing)
	s := e.service(e.cfg, nil)
	e.run(s)
	tn := e.mustTenant("EU", "acme", 2, 2)
	m := mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
	if m.State != realmhook.MigrationReadyToCommit {
		t.Fatalf("migration %s: %s", m.State, m.Message)
	}
	must(s.Commit(t.Context(), "EU", "acme", "m1"))(t)

	var raw string
	if err := e.dbs["US"].QueryRowContext(t.Context(), `SELECT shared_secret FROM realmhook_tenants WHERE client_key = 'acme'`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if !secrets.Sealed(raw) || raw == tn.SharedSecret {
		t.Fatalf("target stores %q: not sealed", raw)
	}
	if got, err := usRing.Open("acme", raw); err != nil || got != tn.SharedSecret {
		t.Fatalf("target's key opens %q, %v; want the tenant's secret", got, err)
	}
	if _, err := euRing.Open("acme", raw); err == nil {
		t.Fatal("the source's key opens the target's copy: it was not re-sealed")
	}
	if got := e.mustTenantState("US", "acme"); got.SharedSecret != tn.SharedSecret || got.State != realmhook.TenantActive {
		t.Fatalf("target tenant: %s, secret changed: %v", got.State, got.SharedSecret != tn.SharedSecret)
	}
}
