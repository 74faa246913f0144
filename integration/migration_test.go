package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// notesTable is the app's own tenant table in these tests, declared in config
// and created by the "app" in every realm's database.
const notesTable = `
tables:
  - name: notes
    tenantColumn: tenant
    key: [id]
`

// hostMigration is one migration as the host's migration service runs it.
type hostMigration struct {
	t     testing.TB
	s     *server
	ten   tenant
	realm string // the base URL the host sends hooks to
	id    string
	to    string
	start time.Time
	end   time.Time
}

func newHostMigration(t testing.TB, s *server, ten tenant, realm, to string, window time.Duration) *hostMigration {
	now := time.Now().UTC()
	return &hostMigration{t: t, s: s, ten: ten, realm: realm, to: to, id: fmt.Sprintf("m-%d", now.UnixNano()), start: now, end: now.Add(window)}
}

func (h *hostMigration) body() []byte {
	b, _ := json.Marshal(map[string]any{
		"startTime":   h.start.Format("2006-01-02T15:04:05.000Z"),
		"endTime":     h.end.Format("2006-01-02T15:04:05.000Z"),
		"location":    h.to,
		"migrationId": h.id,
	})
	return b
}

func (h *hostMigration) hook(name string) response {
	h.t.Helper()
	switch name {
	case "status":
		return call(h.t, h.s, h.ten, h.realm, http.MethodGet, "/dare-migration/status?migrationId="+h.id, nil)
	case "commit", "rollback":
		return call(h.t, h.s, h.ten, h.realm, http.MethodPost, "/dare-migration/"+name, []byte(`{"migrationId":"`+h.id+`"}`))
	}
	return call(h.t, h.s, h.ten, h.realm, http.MethodPost, "/dare-migration/"+name, h.body())
}

// mustHook sends a hook and fails unless it answers 2xx.
func (h *hostMigration) mustHook(name string) map[string]any {
	h.t.Helper()
	r := h.hook(name)
	if r.Status/100 != 2 {
		h.t.Fatalf("%s: %d %s", name, r.Status, r.Body)
	}
	return r.JSON(h.t)
}

// status returns the status body.
func (h *hostMigration) status() map[string]any {
	h.t.Helper()
	return h.mustHook("status")
}

// waitStatus polls status until it is one of want, failing on any other
// terminal status.
func (h *hostMigration) waitStatus(timeout time.Duration, want ...string) map[string]any {
	h.t.Helper()
	var last map[string]any
	waitFor(h.t, timeout, "migration status "+strings.Join(want, "|"), func() bool {
		last = h.status()
		for _, w := range want {
			if last["status"] == w {
				return true
			}
		}
		if last["status"] == "failed" {
			h.t.Fatalf("migration failed: %v", last)
		}
		return false
	})
	return last
}

func mustErrorCode(t testing.TB, r response, wantStatus int, wantCode string) {
	t.Helper()
	if r.Status != wantStatus {
		t.Fatalf("status %d, want %d; body %s", r.Status, wantStatus, r.Body)
	}
	if got := r.JSON(t)["errorResponseCode"]; got != wantCode {
		t.Fatalf("errorResponseCode %v, want %s; body %s", got, wantCode, r.Body)
	}
}

// TestMigration_FullLifecycle moves a tenant EU → US and back the way the
// host does, sending every hook twice, on every database layout: SQLite,
// PostgreSQL, and SQLite→PostgreSQL→SQLite.
func TestMigration_FullLifecycle(t *testing.T) {
	forEachLayout(t, []layout{allSQLite, allPostgres, mixed}, testFullLifecycle)
}

func testFullLifecycle(t *testing.T, l layout) {
	ks := mustKeyServer(t)
	dbs := mustRealmDBs(t, l)
	s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: dbs.databases(),
		Extra: notesTable + "migration:\n  batchRows: 50\n  checkpointRows: 200\n"})

	ten, bystander := newTenant(t), newTenant(t)
	mustInstall(t, s, ks, ten, "EU")
	mustInstall(t, s, ks, bystander, "EU")
	dbs["EU"].mustInsertNotes(t, ten.ClientKey, 1000)
	dbs["EU"].mustInsertNotes(t, bystander.ClientKey, 10)
	for i := 0; i < 30; i++ {
		mustStatus(t, call(t, s, ten, "EU", http.MethodPut, fmt.Sprintf("/api/v1/properties/p%02d", i), []byte(fmt.Sprintf(`{"n":%d}`, i))), http.StatusCreated, "put")
	}
	before := dbs["EU"].mustNoteStats(t, ten.ClientKey)

	// The host may send hooks to any of the app's base URLs; send them to global.
	m := newHostMigration(t, s, ten, "global", "US", time.Hour)
	for i := 0; i < 2; i++ {
		if got := m.mustHook("schedule")["status"]; got != "scheduled" {
			t.Fatalf("schedule #%d status %v", i+1, got)
		}
	}
	for i := 0; i < 2; i++ {
		m.mustHook("start")
	}
	// Reads keep working while the tenant is frozen; writes are refused.
	mustStatus(t, call(t, s, ten, "EU", http.MethodGet, "/api/v1/properties/p01", nil), http.StatusOK, "read while migrating")
	r := call(t, s, ten, "EU", http.MethodPut, "/api/v1/properties/p01", []byte(`1`))
	mustStatus(t, r, http.StatusConflict, "write while migrating")
	if r.JSON(t)["error"] != "tenant_migrating" {
		t.Fatalf("freeze body %s", r.Body)
	}

	ready := m.waitStatus(60*time.Second, "ready-to-commit")
	progress := ready["progress"].(map[string]any)
	if progress["rowsCopied"].(float64) != 1030 || progress["percent"].(float64) != 100 {
		t.Fatalf("progress at ready-to-commit: %v", progress)
	}
	// Invariant 1: nothing in the source changed.
	if after := dbs["EU"].mustNoteStats(t, ten.ClientKey); after != before {
		t.Fatalf("source changed during the migration: %+v → %+v", before, after)
	}
	for i := 0; i < 2; i++ {
		if got := m.mustHook("commit")["status"]; got != "committed" {
			t.Fatalf("commit #%d status %v", i+1, got)
		}
	}
	if got := m.status()["status"]; got != "committed" {
		t.Fatalf("status after commit %v", got)
	}

	// The target serves the tenant, the source points there.
	r = call(t, s, ten, "US", http.MethodGet, "/api/v1/properties/p07", nil)
	mustStatus(t, r, http.StatusOK, "read in US")
	if r.Header.Get("X-Realm") != "US" || r.JSON(t)["value"].(map[string]any)["n"].(float64) != 7 {
		t.Fatalf("US read: %s %s", r.Header.Get("X-Realm"), r.Body)
	}
	mustStatus(t, call(t, s, ten, "US", http.MethodPut, "/api/v1/properties/p01", []byte(`"thawed"`)), http.StatusOK, "write in US after commit")
	r = call(t, s, ten, "EU", http.MethodGet, "/api/v1/properties/p07", nil)
	mustStatus(t, r, http.StatusMisdirectedRequest, "EU after commit")
	if r.JSON(t)["correctBaseUrl"] != s.realmURL("US") {
		t.Fatalf("421 body %s", r.Body)
	}
	if got := dbs["US"].mustNoteStats(t, ten.ClientKey); got != before {
		t.Fatalf("US notes %+v, want %+v", got, before)
	}
	// The bystander never moved and was never copied.
	mustStatus(t, call(t, s, bystander, "EU", http.MethodGet, "/api/v1/properties?limit=1", nil), http.StatusOK, "bystander in EU")
	if got := dbs["US"].mustNoteStats(t, bystander.ClientKey); got.Count != 0 {
		t.Fatalf("bystander rows leaked to US: %+v", got)
	}

	// And back again, hooks sent to the tenant's new realm this time.
	back := newHostMigration(t, s, ten, "US", "EU", time.Hour)
	back.mustHook("schedule")
	back.mustHook("start")
	back.waitStatus(60*time.Second, "ready-to-commit")
	back.mustHook("commit")
	r = call(t, s, ten, "EU", http.MethodGet, "/api/v1/properties/p01", nil)
	mustStatus(t, r, http.StatusOK, "read in EU after moving back")
	if v, _ := r.JSON(t)["value"].(string); v != "thawed" {
		t.Fatalf("value written in US did not come back: %s", r.Body)
	}
	if got := dbs["EU"].mustNoteStats(t, ten.ClientKey); got != before {
		t.Fatalf("EU notes after round trip %+v, want %+v", got, before)
	}
	mustStatus(t, call(t, s, ten, "US", http.MethodGet, "/api/v1/properties/p01", nil), http.StatusMisdirectedRequest, "US after moving back")
}

// TestMigration_ErrorCodes reaches every protocol error code.
func TestMigration_ErrorCodes(t *testing.T) {
	ks := mustKeyServer(t)
	s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Extra: "migration:\n  maxConcurrent: 1\n"})
	a, b := newTenant(t), newTenant(t)
	mustInstall(t, s, ks, a, "EU")
	mustInstall(t, s, ks, b, "EU")

	t.Run("E0001StartWithoutSchedule", func(t *testing.T) {
		m := newHostMigration(t, s, a, "EU", "US", time.Hour)
		mustErrorCode(t, m.hook("start"), http.StatusNotFound, "E0001")
	})
	t.Run("E0002UnknownRealm", func(t *testing.T) {
		m := newHostMigration(t, s, a, "EU", "ZZ", time.Hour)
		r := m.hook("schedule")
		if r.Status/100 != 4 || r.JSON(t)["errorResponseCode"] != "E0002" {
			t.Fatalf("schedule to ZZ: %d %s", r.Status, r.Body)
		}
	})
	t.Run("E0004TooManyConcurrent", func(t *testing.T) {
		first := newHostMigration(t, s, a, "EU", "US", time.Hour)
		first.mustHook("schedule")
		second := newHostMigration(t, s, b, "EU", "US", time.Hour)
		r := second.hook("schedule")
		if r.Status/100 != 4 || r.JSON(t)["errorResponseCode"] != "E0004" {
			t.Fatalf("second schedule: %d %s", r.Status, r.Body)
		}
		first.mustHook("rollback")
		second.mustHook("schedule")
		second.mustHook("rollback")
	})
	t.Run("E9999CommitBeforeReady", func(t *testing.T) {
		m := newHostMigration(t, s, a, "EU", "US", time.Hour)
		m.mustHook("schedule")
		r := m.hook("commit")
		if r.Status/100 != 4 || r.JSON(t)["errorResponseCode"] != "E9999" {
			t.Fatalf("commit of a scheduled migration: %d %s", r.Status, r.Body)
		}
		m.mustHook("rollback")
		m.mustHook("rollback")
		if got := m.status()["status"]; got != "rolled-back" {
			t.Fatalf("status after rollback %v", got)
		}
	})
	t.Run("E0003Disabled", func(t *testing.T) {
		off := mustStartServer(t, serverConfig{KeysURL: ks.URL, Extra: "migration:\n  enabled: false\n"})
		c := newTenant(t)
		mustInstall(t, off, ks, c, "EU")
		r := newHostMigration(t, off, c, "EU", "US", time.Hour).hook("schedule")
		if r.Status/100 != 4 || r.JSON(t)["errorResponseCode"] != "E0003" {
			t.Fatalf("schedule with migrations off: %d %s", r.Status, r.Body)
		}
	})
}
