package migration

import (
	"strings"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// extraTable is a configured app table created only where a test says.
var extraTable = store.Table{Name: "issue_notes", TenantColumn: "tenant", Key: []string{"id"}}

// serviceUnchecked is service without the start-up schema check: a target
// realm whose table went missing after start-up (or that another process
// serves) is what these tests are about.
func (e *env) serviceUnchecked(cfg Config) *Service {
	peers := map[string]Peer{}
	for r, st := range e.stores {
		peers[r] = LocalPeer(st)
	}
	s := New(cfg, e.stores, peers, Options{Logger: quietLogger(), Now: e.clock.Now})
	e.t.Cleanup(s.Close)
	return s
}

func (e *env) mustExec(realm, q string) {
	e.t.Helper()
	if _, err := e.dbs[realm].ExecContext(e.t.Context(), q); err != nil {
		e.t.Fatalf("%s in %s: %v", q, realm, err)
	}
}

// TestMissingTargetTable: a target that lacks a configured table is refused at
// /schedule with E9999 naming the table; and when the table vanishes after
// the schedule, the copy fails and the rollback still finishes and lifts the
// freeze (what is not there needs no deleting).
func TestMissingTargetTable(t *testing.T) {
	e := newEnv(t, "EU", "US")
	e.mustExec("EU", `CREATE TABLE issue_notes (tenant TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (tenant, id))`)
	e.mustExec("EU", `INSERT INTO issue_notes VALUES ('acme', 1), ('acme', 2)`)
	cfg := e.cfg
	cfg.Tables = append(cfg.Tables, extraTable)
	s := e.serviceUnchecked(cfg)
	e.run(s)
	ctx := t.Context()
	tn := e.mustTenant("EU", "acme", 3, 3)

	t.Run("ScheduleRefused", func(t *testing.T) {
		_, err := s.Schedule(ctx, "EU", tn, e.req("m1", "US"))
		mustResponse(t, err, realmhook.ResponseOther)
		if msg := realmhook.ErrorMessage(err); !strings.Contains(msg, "issue_notes") || !strings.Contains(msg, "US") {
			t.Fatalf("message %q does not name the table and the target", msg)
		}
	})

	t.Run("RollbackAfterTableVanished", func(t *testing.T) {
		// Scheduled before the operator configured the table (a restart
		// since), so the schedule's check did not see it.
		req := e.req("m2", "US")
		must(e.serviceUnchecked(e.cfg).Schedule(ctx, "EU", tn, req))(t)
		must(s.Start(ctx, "EU", tn, req))(t)
		m := mustWait(t, s, "EU", "acme", "m2", realmhook.MigrationFailed)
		if m.ErrorResponseCode != realmhook.ResponseOther {
			t.Fatalf("failed with %s, want E9999", m.ErrorResponseCode)
		}
		rb, err := s.Rollback(ctx, "EU", "acme", "m2")
		if err != nil {
			t.Fatalf("Rollback: %v", err)
		}
		if rb.State != realmhook.MigrationRolledBack {
			t.Fatalf("rollback left %s", rb.State)
		}
		if got := e.mustTenantState("EU", "acme"); got.Frozen() || got.State != realmhook.TenantActive {
			t.Fatalf("source tenant after rollback: state %s, frozen by %q", got.State, got.MigrationID)
		}
		e.mustNoTenant("US", "acme")
		if _, err := e.stores["EU"].PutProperty(ctx, "acme", "after", []byte(`1`)); err != nil {
			t.Fatalf("write after rollback: %v", err)
		}
	})
}

// TestCheckTablesAtStartUp: the start-up check names realm and table.
func TestCheckTablesAtStartUp(t *testing.T) {
	e := newEnv(t, "EU", "US")
	e.mustExec("EU", `CREATE TABLE issue_notes (tenant TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (tenant, id))`)
	cfg := e.cfg
	cfg.Tables = append(cfg.Tables, extraTable)
	err := e.serviceUnchecked(cfg).CheckTables(t.Context())
	if err == nil || !strings.Contains(err.Error(), "realm US") || !strings.Contains(err.Error(), "issue_notes") {
		t.Fatalf("CheckTables = %v, want an error naming realm US and table issue_notes", err)
	}
	if err := e.serviceUnchecked(e.cfg).CheckTables(t.Context()); err != nil {
		t.Fatalf("CheckTables with every table present: %v", err)
	}
}

// TestLeaseNamesUnambiguous: a ":" in either part cannot make two
// migrations share a lease.
func TestLeaseNamesUnambiguous(t *testing.T) {
	pairs := [][2]string{{"a:b", "c"}, {"a", "b:c"}, {"a%3Ab", "c"}, {"a", "b%3Ac"}, {"a:", "b"}, {"a", ":b"}, {"", "a:b"}, {"a:b", ""}}
	seen := map[string][2]string{}
	for _, p := range pairs {
		n := leaseName(p[0], p[1])
		if prev, dup := seen[n]; dup {
			t.Fatalf("leaseName(%q, %q) = leaseName(%q, %q) = %q", p[0], p[1], prev[0], prev[1], n)
		}
		seen[n] = p
	}
}

// TestFailedStatusHidesDetail: a copy that fails on the target's SQL tells
// the host a code and a short sentence; the database's words go to the
// migration's events (and the log) only.
func TestFailedStatusHidesDetail(t *testing.T) {
	e := newEnv(t, "EU", "US")
	e.mustExec("US", `DROP TABLE notes`)
	e.mustExec("US", `CREATE TABLE notes(tenant TEXT NOT NULL, id INTEGER NOT NULL, body TEXT, must TEXT NOT NULL, PRIMARY KEY(tenant,id))`)
	s := e.service(e.cfg, nil)
	e.run(s)
	tn := e.mustTenant("EU", "acme", 2, 2)
	m := mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
	if m.State != realmhook.MigrationFailed || m.ErrorResponseCode != realmhook.ResponseOther {
		t.Fatalf("migration %s %s, want failed E9999", m.State, m.ErrorResponseCode)
	}
	for _, leak := range []string{"NOT NULL", "constraint", "notes.must", "sqlite", "(" + "1299" + ")"} {
		if strings.Contains(m.Message, leak) {
			t.Fatalf("host-facing message %q holds %q", m.Message, leak)
		}
	}
	if m.Message == "" || len(m.Message) > 200 {
		t.Fatalf("host-facing message %q: want a short sentence", m.Message)
	}
	ev := must(s.Events(t.Context(), "EU", "acme", "m1"))(t)
	last := ev[len(ev)-1]
	if last.To != realmhook.MigrationFailed || !strings.Contains(last.Detail, "NOT NULL") {
		t.Fatalf("last event %+v: want the failure with the database's detail", last)
	}
}
