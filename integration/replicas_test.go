package integration

import (
	"net/http"
	"testing"
	"time"
)

// TestReplicas_CachedTenantsStayCorrect runs two realmhook processes on one
// set of PostgreSQL databases, as replicas behind a load balancer would, and
// checks that what each caches of a tenant never outlives a change the other
// made: a re-install's new secret works on the other replica on its next
// request, a freeze refuses the other replica's next write, and an uninstall
// is refused by the replica that took it at once and by the other one soon
// (within realms.MaxStale; polled here, not timed).
func TestReplicas_CachedTenantsStayCorrect(t *testing.T) {
	ks := mustKeyServer(t)
	dbs := mustRealmDBs(t, allPostgres)
	a := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: dbs.databases()})
	b := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: dbs.databases()})
	ten := newTenant(t)
	const prop = "/api/v1/properties/color"

	mustInstall(t, a, ks, ten, "EU")
	mustStatus(t, call(t, b, ten, "EU", http.MethodPut, prop, []byte(`"red"`)), http.StatusCreated, "write on B after install on A")
	// Both replicas now hold the tenant in their caches.
	mustStatus(t, call(t, a, ten, "EU", http.MethodGet, prop, nil), http.StatusOK, "read on A")
	mustStatus(t, call(t, b, ten, "EU", http.MethodGet, prop, nil), http.StatusOK, "read on B")

	t.Run("ReinstallSecretOnTheOtherReplica", func(t *testing.T) {
		rotated := ten
		rotated.Secret = newTenant(t).Secret
		mustInstall(t, a, ks, rotated, "EU")
		mustStatus(t, call(t, b, rotated, "EU", http.MethodGet, prop, nil), http.StatusOK, "read on B with the new secret, at once")
		mustStatus(t, call(t, a, rotated, "EU", http.MethodGet, prop, nil), http.StatusOK, "read on A with the new secret")
		ten = rotated
	})

	t.Run("FreezeRefusesTheOtherReplicasWrite", func(t *testing.T) {
		m := newHostMigration(t, a, ten, "EU", "US", time.Hour)
		m.mustHook("schedule")
		m.mustHook("start")
		// B read the tenant unfrozen a moment ago; its write is still refused,
		// because the freeze is checked inside the write's own transaction.
		mustStatus(t, call(t, b, ten, "EU", http.MethodPut, prop, []byte(`"blue"`)), http.StatusConflict, "write on B during the copy")
		mustStatus(t, call(t, a, ten, "EU", http.MethodPut, prop, []byte(`"blue"`)), http.StatusConflict, "write on A during the copy")
		mustStatus(t, call(t, b, ten, "EU", http.MethodGet, prop, nil), http.StatusOK, "read on B during the copy")
		m.mustHook("rollback")
		mustStatus(t, call(t, b, ten, "EU", http.MethodPut, prop, []byte(`"green"`)), http.StatusOK, "write on B after the rollback")
	})

	t.Run("UninstallOnBothReplicas", func(t *testing.T) {
		r := signedInstall(t, a, ks, ten, "EU", "uninstalled")
		if r.Status/100 != 2 {
			t.Fatalf("uninstall on A: %d %s", r.Status, r.Body)
		}
		mustStatus(t, call(t, a, ten, "EU", http.MethodGet, prop, nil), http.StatusUnauthorized, "read on A right after its uninstall")
		// Whether B has caught up yet or not, the write is refused: 401 from
		// a fresh read, or 404 from the write's own check of the record.
		if r := call(t, b, ten, "EU", http.MethodPut, prop, []byte(`"late"`)); r.Status != http.StatusUnauthorized && r.Status != http.StatusNotFound {
			t.Fatalf("write on B after the uninstall: %d %s, want 401 or 404", r.Status, r.Body)
		}
		waitFor(t, 10*time.Second, "B to refuse reads of the uninstalled tenant", func() bool {
			return call(t, b, ten, "EU", http.MethodGet, prop, nil).Status == http.StatusUnauthorized
		})
	})
}
