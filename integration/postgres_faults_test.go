package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/realmhook/realmhook/integration/pgtest"
)

// TestPostgres_ReplicaTakesOverKilledCopy runs two replicas of the same realms
// against the same PostgreSQL databases. The replica running a copy is killed
// with SIGKILL; the other takes the job over once its lease expires and
// finishes it, with nothing lost or duplicated.
func TestPostgres_ReplicaTakesOverKilledCopy(t *testing.T) {
	ks := mustKeyServer(t)
	dbs := mustRealmDBs(t, allPostgres)
	cfg := serverConfig{KeysURL: ks.URL, Databases: dbs.databases(), Extra: slowCopy}
	a := mustStartServer(t, cfg)
	b := mustStartServer(t, cfg)
	const rows = 150000
	// The host reaches a replica through a load balancer: any replica may get
	// any hook. Start lands on a; once a is gone, b answers.
	onA, ten, before := mustCopyUnderWay(t, a, ks, dbs, rows)
	onB := *onA
	onB.s = b
	a.kill()
	if got := dbs["US"].mustNoteStats(t, ten.ClientKey); got.Count >= rows {
		t.Fatalf("the copy had finished before the kill (%d rows)", got.Count)
	}
	onB.waitStatus(180*time.Second, "ready-to-commit")
	if got := dbs["US"].mustNoteStats(t, ten.ClientKey); got != before {
		t.Fatalf("target after takeover %+v, want %+v", got, before)
	}
	if !strings.Contains(b.Output(), "migration copy resumed") {
		t.Fatalf("replica b never resumed the copy; who finished it?\n%s", b.Output())
	}
	onB.mustHook("commit")
	mustStatus(t, call(t, b, ten, "US", http.MethodGet, "/api/v1/properties?limit=1", nil), http.StatusOK, "tenant served in US")
}

// TestPostgres_RestartMidCopy restarts PostgreSQL under a running copy. The
// copy must either resume and finish with an exact copy, or fail cleanly with
// E9999: never report ready-to-commit on a short copy.
func TestPostgres_RestartMidCopy(t *testing.T) {
	ks := mustKeyServer(t)
	dbs := mustRealmDBs(t, allPostgres)
	s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: dbs.databases(), Extra: slowCopy})
	m, ten, before := mustCopyUnderWay(t, s, ks, dbs, 150000)
	pgtest.Restart(t)

	var st map[string]any
	waitFor(t, 180*time.Second, "the copy to finish or fail", func() bool {
		r := m.hook("status")
		if r.Status != http.StatusOK {
			return false // the database may still be coming back; the host polls again
		}
		st = r.JSON(t)
		return st["status"] == "ready-to-commit" || st["status"] == "failed"
	})
	switch st["status"] {
	case "ready-to-commit":
		if got := dbs["US"].mustNoteStats(t, ten.ClientKey); got != before {
			t.Fatalf("ready-to-commit after a restart with target %+v, want %+v", got, before)
		}
		m.mustHook("commit")
	case "failed":
		if st["errorResponseCode"] != "E9999" {
			t.Fatalf("failed without E9999: %v", st)
		}
		m.mustHook("rollback")
		if got := dbs["US"].mustNoteStats(t, ten.ClientKey); got.Count != 0 {
			t.Fatalf("rollback left %d rows in the target", got.Count)
		}
	}
	t.Logf("after the restart the migration ended %v", st["status"])
}
