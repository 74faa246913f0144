package integration

import (
	"bytes"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/integration/suitereport"
	"github.com/realmhook/realmhook/migration"
)

// tenantRows is every row of one tenant in one realm's database, read with
// plain SQL (not the product's checksum): notes by id and properties by key,
// each with its values, and how many rows the database holds beyond the
// distinct keys (a duplicate).
type tenantRows struct {
	rows       map[string]string
	duplicates int
}

func (a *appDB) mustTenantRows(t testing.TB, clientKey string) tenantRows {
	t.Helper()
	out := tenantRows{rows: map[string]string{}}
	read := func(q, prefix string) {
		rs, err := a.db.Query(a.rebind(q), clientKey)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rs.Close()
		for rs.Next() {
			var k string
			var v1, v2 sql.NullString
			if err := rs.Scan(&k, &v1, &v2); err != nil {
				t.Fatal(err)
			}
			key := prefix + k
			if _, dup := out.rows[key]; dup {
				out.duplicates++
			}
			out.rows[key] = fmt.Sprintf("%v:%s|%v:%s", v1.Valid, v1.String, v2.Valid, v2.String)
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
	}
	read(`SELECT CAST(id AS TEXT), body, CAST(score AS TEXT) FROM notes WHERE tenant = ?`, "note/")
	read(`SELECT key, value, NULL FROM realmhook_properties WHERE client_key = ?`, "property/")
	return out
}

// diff counts the rows of want missing or different in got (lost) and the
// rows of got that want lacks or that repeat a key (duplicated).
func (want tenantRows) diff(got tenantRows) (lost, duplicated int) {
	for k, v := range want.rows {
		if g, ok := got.rows[k]; !ok || g != v {
			lost++
		}
	}
	for k := range got.rows {
		if _, ok := want.rows[k]; !ok {
			duplicated++
		}
	}
	return lost, duplicated + got.duplicates
}

// tenantRecord is the tenant's record in a realm: its state, or "" if none.
func (a *appDB) tenantRecord(t testing.TB, clientKey string) string {
	t.Helper()
	var state string
	err := a.db.QueryRow(a.rebind(`SELECT state FROM realmhook_tenants WHERE client_key = ?`), clientKey).Scan(&state)
	if err == sql.ErrNoRows {
		return ""
	} else if err != nil {
		t.Fatal(err)
	}
	return state
}

// leftoverCopies counts the records in a realm that the purge sweeper has
// still to delete (moved or being purged).
func (a *appDB) leftoverCopies(t testing.TB) int {
	t.Helper()
	var n int
	if err := a.db.QueryRow(`SELECT count(*) FROM realmhook_tenants WHERE state IN ('moved', 'purging')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// crashStep is one point of a migration at which the crash suite kills the
// process holding the job, and how the host then finishes the migration.
type crashStep struct {
	name string
	// pause is the migration.PauseEnv value that stops the process there;
	// "" kills it right after the hooks of `before` answered.
	pause string
	// before are the hooks sent before the kill: "ready" waits for
	// ready-to-commit, a name ending in "!" is sent without waiting for the
	// answer (it blocks at the pause).
	before []string
	// finish is what the host does after the restart: "commit" (the
	// migration must end committed) or "rollback".
	finish string
}

// crashSteps covers every step of a migration: after schedule, inside a
// copy interval, between an interval's commit and its checkpoint, after a
// checkpoint, mid-verify, between the commit record and its apply, half-way
// through the apply, during a rollback and during the purge.
var crashSteps = []crashStep{
	{name: "AfterSchedule", before: []string{"schedule"}, finish: "commit"},
	{name: "CopyMidInterval", pause: "copy-batch:3", before: []string{"schedule", "start"}, finish: "commit"},
	{name: "CopyBeforeCheckpoint", pause: "copy-written:2", before: []string{"schedule", "start"}, finish: "commit"},
	{name: "CopyAfterCheckpoint", pause: "copy-checkpoint:3", before: []string{"schedule", "start"}, finish: "commit"},
	{name: "MidVerify", pause: "verify-table:1", before: []string{"schedule", "start"}, finish: "commit"},
	{name: "RollbackAfterCrashMidCopy", pause: "copy-checkpoint:2", before: []string{"schedule", "start"}, finish: "rollback"},
	// A commit cut off by the crash is a non-2xx without a code to the
	// host, which sends it again; the restarted process has finished it.
	{name: "CommitRecorded", pause: "commit-recorded", before: []string{"schedule", "start", "ready", "commit!"}, finish: "commit"},
	{name: "CommitHalfApplied", pause: "commit-activated", before: []string{"schedule", "start", "ready", "commit!"}, finish: "commit"},
	{name: "MidRollback", pause: "rollback-discarded", before: []string{"schedule", "start", "ready", "rollback!"}, finish: "rollback"},
	{name: "MidPurge", pause: "purge-rows", before: []string{"schedule", "start", "ready", "commit"}, finish: "purge"},
}

// crashCopy copies in small batches so a copy has several intervals, with a
// short lease so the restarted process takes the job over quickly, and a
// purge that comes seconds after a commit.
const crashCopy = notesTable + `migration:
  batchRows: 50
  checkpointRows: 200
  leaseTTL: 2s
  purgeAfter: 3s
  sweepInterval: 1s
`

// suiteRows is n rows, or 30 times n under make soak (REALMHOOK_SOAK set):
// CI keeps the families quick, the soak run makes each copy long.
func suiteRows(n int) int {
	if os.Getenv("REALMHOOK_SOAK") != "" {
		return 30 * n
	}
	return n
}

// crashCounts adds up a family's outcome across layouts.
type crashCounts struct {
	mu                             sync.Mutex
	injected, survived, lost, dupl int
}

func (c *crashCounts) add(survived bool, lost, dupl int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.injected++
	if survived {
		c.survived++
	}
	c.lost += lost
	c.dupl += dupl
}

// TestFaults_CrashAtEveryStep SIGKILLs the process holding a migration's job
// at every step, restarts it and lets the host finish: the tenant's rows,
// compared one by one with plain SQL, end exactly once in the realm that
// serves it, on SQLite and on PostgreSQL.
func TestFaults_CrashAtEveryStep(t *testing.T) {
	var counts crashCounts
	forEachLayout(t, []layout{allSQLite, allPostgres}, func(t *testing.T, l layout) {
		ks := mustKeyServer(t)
		dbs := mustRealmDBs(t, l)
		s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: dbs.databases(), Extra: crashCopy})
		for _, step := range crashSteps {
			t.Run(step.name, func(t *testing.T) {
				ok, lost, dupl := runCrashStep(t, s, ks, dbs, step)
				counts.add(ok && !t.Failed(), lost, dupl)
			})
		}
	})
	suitereport.Record(t, "faults", "crash at every step: %d injected, %d survived, %d rows lost, %d duplicated",
		counts.injected, counts.survived, counts.lost, counts.dupl)
	if counts.lost+counts.dupl > 0 || counts.survived != counts.injected {
		t.Fatalf("%d of %d crashes not survived; %d rows lost, %d duplicated", counts.injected-counts.survived, counts.injected, counts.lost, counts.dupl)
	}
}

func runCrashStep(t *testing.T, s *server, ks *keyServer, dbs realmDBs, step crashStep) (ok bool, lost, dupl int) {
	ten := newTenant(t)
	mustInstall(t, s, ks, ten, "EU")
	dbs["EU"].mustInsertNotes(t, ten.ClientKey, suiteRows(700))
	for i := range 5 {
		mustStatus(t, call(t, s, ten, "EU", http.MethodPut, fmt.Sprintf("/api/v1/properties/p%d", i), []byte(fmt.Sprintf(`{"n":%d}`, i))), http.StatusCreated, "put")
	}
	before := dbs["EU"].mustTenantRows(t, ten.ClientKey)
	m := newHostMigration(t, s, ten, "EU", "US", time.Hour)

	// The process the crash strikes: paused at the step, if there is one.
	if step.finish == "purge" {
		// The earlier steps' tenants are purged by the same sweeper: were one
		// still due, the pause would strike its purge at start-up, before
		// this tenant's commit, and this tenant's purge would never come.
		waitFor(t, 60*time.Second, "the earlier steps' purges", func() bool {
			return dbs["EU"].leftoverCopies(t) == 0
		})
	}
	if step.pause != "" {
		s.kill()
		s.Env = []string{migration.PauseEnv + "=" + step.pause}
		s.restart()
	}
	pausedLine := migration.PauseEnv + ": paused at " + strings.SplitN(step.pause, ":", 2)[0]
	outBefore := len(s.Output())
	for _, h := range step.before {
		switch h {
		case "ready":
			m.waitStatus(120*time.Second, "ready-to-commit")
		case "commit!", "rollback!":
			// It blocks at the pause: the host's call dies with the process.
			req := mustSignedRequest(t, s, ten, "EU", http.MethodPost, "/dare-migration/"+strings.TrimSuffix(h, "!"), []byte(`{"migrationId":"`+m.id+`"}`))
			go func() {
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
		default:
			m.mustHook(h)
		}
	}
	if step.pause != "" {
		waitFor(t, 120*time.Second, "the process to pause at "+step.pause, func() bool {
			return strings.Contains(s.Output()[outBefore:], pausedLine)
		})
	}
	s.kill()
	s.Env = nil
	s.restart()

	var home, other string
	switch step.finish {
	case "commit":
		if step.name == "AfterSchedule" {
			m.mustHook("start")
		}
		if st := m.waitStatus(180*time.Second, "ready-to-commit", "committed", "committing"); st["status"] != "committed" {
			waitFor(t, 60*time.Second, "commit to answer committed", func() bool {
				r := m.hook("commit")
				return r.Status == http.StatusOK && r.JSON(t)["status"] == "committed"
			})
		}
		home, other = "US", "EU"
	case "rollback":
		waitFor(t, 60*time.Second, "rollback to answer rolled-back", func() bool {
			r := m.hook("rollback")
			return r.Status == http.StatusOK && r.JSON(t)["status"] == "rolled-back"
		})
		home, other = "EU", "US"
	case "purge":
		m.waitStatus(60*time.Second, "committed")
		waitFor(t, 60*time.Second, "the purge to finish after the restart", func() bool {
			return dbs["EU"].tenantRecord(t, ten.ClientKey) == "" && len(dbs["EU"].mustTenantRows(t, ten.ClientKey).rows) == 0
		})
		home, other = "US", "EU"
	}

	got := dbs[home].mustTenantRows(t, ten.ClientKey)
	lost, dupl = before.diff(got)
	if lost+dupl > 0 {
		t.Errorf("%s after the crash: %d rows lost, %d duplicated in %s", step.name, lost, dupl, home)
	}
	if st := dbs[home].tenantRecord(t, ten.ClientKey); st != "active" {
		t.Errorf("tenant in %s is %q, want active", home, st)
	}
	if step.finish == "rollback" {
		if left := dbs[other].mustTenantRows(t, ten.ClientKey); len(left.rows) > 0 {
			t.Errorf("rollback left %d rows in %s", len(left.rows), other)
			dupl += len(left.rows)
		}
		mustStatus(t, call(t, s, ten, "EU", http.MethodPut, "/api/v1/properties/after", []byte(`1`)), http.StatusCreated, "write after rollback")
	} else {
		mustStatus(t, call(t, s, ten, "US", http.MethodGet, "/api/v1/properties/p0", nil), http.StatusOK, "read in the new realm")
		mustStatus(t, call(t, s, ten, "EU", http.MethodGet, "/api/v1/properties/p0", nil), http.StatusMisdirectedRequest, "read in the old realm")
	}
	return !t.Failed(), lost, dupl
}

// mustSignedRequest is the request call would send, for sending from
// another goroutine.
func mustSignedRequest(t testing.TB, s *server, ten tenant, realm, method, path string, body []byte) *http.Request {
	t.Helper()
	base := s.realmURL(realm)
	tok, err := connectjwt.Signer{}.HS256([]byte(ten.Secret), ten.ClientKey, method, base+path, base)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "JWT "+tok)
	req.Header.Set("Content-Type", "application/json")
	return req
}
