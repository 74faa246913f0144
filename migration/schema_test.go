package migration

import (
	"strings"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

func TestOrderTables(t *testing.T) {
	tb := func(names ...string) []store.Table {
		var out []store.Table
		for _, n := range names {
			out = append(out, store.Table{Name: n})
		}
		return out
	}
	names := func(ts []store.Table) string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Name)
		}
		return strings.Join(out, " ")
	}
	fk := func(child, parent string, deferrable bool) store.ForeignKey {
		return store.ForeignKey{Child: child, Parent: parent, Deferrable: deferrable}
	}
	for _, tc := range []struct {
		name   string
		tables []store.Table
		fks    []store.ForeignKey
		want   string // "" with wantErr
		err    string
	}{
		{"NoKeysKeepsConfigOrder", tb("a", "b", "c"), nil, "a b c", ""},
		{"ChildBeforeParentInConfig", tb("p", "child", "parent"), []store.ForeignKey{fk("child", "parent", false)}, "p parent child", ""},
		{"Chain", tb("c", "b", "a"), []store.ForeignKey{fk("c", "b", false), fk("b", "a", false)}, "a b c", ""},
		{"SelfReferenceIgnored", tb("tree"), []store.ForeignKey{fk("tree", "tree", false)}, "tree", ""},
		{"KeyOutsideSetIgnored", tb("a"), []store.ForeignKey{fk("a", "users", false)}, "a", ""},
		{"NamesCaseInsensitive", tb("Child", "Parent"), []store.ForeignKey{fk("child", "parent", false)}, "Parent Child", ""},
		{"DeferrableCycleBroken", tb("a", "b"), []store.ForeignKey{fk("a", "b", true), fk("b", "a", false)}, "a b", ""},
		{"CycleRefused", tb("x", "a", "b"), []store.ForeignKey{fk("a", "b", false), fk("b", "a", false)}, "", "tables a, b reference each other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := orderTables(tc.tables, tc.fks)
			if tc.err != "" {
				if err == nil || realmhook.ErrorCode(err) != realmhook.EINVALID || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("orderTables = %v, %v; want EINVALID containing %q", names(got), err, tc.err)
				}
				return
			}
			if err != nil || names(got) != tc.want {
				t.Fatalf("orderTables = %q, %v; want %q", names(got), err, tc.want)
			}
		})
	}
}

// fkEnv is an env whose realms hold a parent and a child table joined by a
// foreign key (SQLite enforces it), configured child first.
func fkEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, "EU", "US")
	for r, db := range e.dbs {
		for _, ddl := range []string{
			`CREATE TABLE parents (tenant TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (tenant, id))`,
			`CREATE TABLE children (tenant TEXT NOT NULL, id INTEGER NOT NULL, parent_id INTEGER NOT NULL,
				PRIMARY KEY (tenant, id), FOREIGN KEY (tenant, parent_id) REFERENCES parents (tenant, id))`,
		} {
			if _, err := db.ExecContext(t.Context(), ddl); err != nil {
				t.Fatalf("%s: %v", r, err)
			}
		}
	}
	e.cfg.Tables = []store.Table{
		{Name: "children", TenantColumn: "tenant", Key: []string{"id"}},
		notesTable,
		{Name: "parents", TenantColumn: "tenant", Key: []string{"id"}},
	}
	return e
}

func (e *env) mustFamily(realm, clientKey string, n int) {
	e.t.Helper()
	db := e.dbs[realm]
	for i := 1; i <= n; i++ {
		if _, err := db.ExecContext(e.t.Context(), `PRAGMA foreign_keys = ON; INSERT INTO parents VALUES (?, ?)`, clientKey, i); err != nil {
			e.t.Fatal(err)
		}
		if _, err := db.ExecContext(e.t.Context(), `INSERT INTO children VALUES (?, ?, ?)`, clientKey, i, i); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) count(realm, table, clientKey string) int {
	e.t.Helper()
	var n int
	if err := e.dbs[realm].QueryRowContext(e.t.Context(), `SELECT count(*) FROM `+table+` WHERE tenant = ?`, clientKey).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestForeignKeysOrderCopiesAndDeletes: with the child table configured
// first, the copy still writes parents first, and rollback, the clearing of
// a previous copy, and purge all delete children first.
func TestForeignKeysOrderCopiesAndDeletes(t *testing.T) {
	e := fkEnv(t)
	s := e.service(e.cfg, nil)
	ctx := t.Context()
	if got := s.tables[len(s.tables)-1].Name; got != "children" {
		t.Fatalf("copy order ends with %s, want children after parents", got)
	}
	tn := e.mustTenant("EU", "acme", 2, 2)
	e.mustFamily("EU", "acme", 7)

	m := mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
	if m.State != realmhook.MigrationReadyToCommit {
		t.Fatalf("migration = %s %s, want ready-to-commit", m.State, m.Message)
	}
	if e.count("US", "children", "acme") != 7 || e.count("US", "parents", "acme") != 7 {
		t.Fatal("the copy did not land every parent and child")
	}
	// Rollback deletes the copy: children first.
	if m = must(s.Rollback(ctx, "EU", "acme", "m1"))(t); m.State != realmhook.MigrationRolledBack {
		t.Fatalf("rollback = %s %s", m.State, m.Message)
	}
	if e.count("US", "children", "acme")+e.count("US", "parents", "acme") != 0 {
		t.Fatal("rollback left rows of the tenant in the target")
	}

	// A copy over a previous attempt's rows clears them children first.
	m = mustMigrate(t, s, "EU", tn, e.req("m2", "US"))
	if m.State != realmhook.MigrationReadyToCommit {
		t.Fatalf("second migration = %s %s", m.State, m.Message)
	}
	must(s.Rollback(ctx, "EU", "acme", "m2"))(t)
	m = mustMigrate(t, s, "EU", tn, e.req("m3", "US"))
	if m.State != realmhook.MigrationReadyToCommit {
		t.Fatalf("third migration = %s %s", m.State, m.Message)
	}
	must(s.Commit(ctx, "EU", "acme", "m3"))(t)

	// Purge of the moved source copy: children first.
	e.clock.Advance(25 * time.Hour)
	s.sweep(ctx)
	e.mustNoTenant("EU", "acme")
	if e.count("EU", "children", "acme")+e.count("EU", "parents", "acme") != 0 {
		t.Fatal("purge left rows of the moved tenant")
	}
}

func TestForeignKeyCycleRefusedAtStartup(t *testing.T) {
	e := newEnv(t, "EU")
	for _, ddl := range []string{
		`CREATE TABLE a (tenant TEXT NOT NULL, id INTEGER NOT NULL, b_id INTEGER, PRIMARY KEY (tenant, id), FOREIGN KEY (tenant, b_id) REFERENCES b (tenant, id))`,
		`CREATE TABLE b (tenant TEXT NOT NULL, id INTEGER NOT NULL, a_id INTEGER, PRIMARY KEY (tenant, id), FOREIGN KEY (tenant, a_id) REFERENCES a (tenant, id))`,
	} {
		if _, err := e.dbs["EU"].ExecContext(t.Context(), ddl); err != nil {
			t.Fatal(err)
		}
	}
	cfg := e.cfg
	cfg.Tables = []store.Table{{Name: "a", TenantColumn: "tenant", Key: []string{"id"}}, {Name: "b", TenantColumn: "tenant", Key: []string{"id"}}}
	s := New(cfg, e.stores, map[string]Peer{"EU": LocalPeer(e.stores["EU"])}, Options{Logger: quietLogger(), Now: e.clock.Now})
	t.Cleanup(s.Close)
	err := s.CheckSchema(t.Context())
	if realmhook.ErrorCode(err) != realmhook.EINVALID || !strings.Contains(err.Error(), "a, b") {
		t.Fatalf("CheckSchema = %v, want EINVALID naming a, b", err)
	}
}

// TestTriggersRefusedAtStartupUnlessAllowed: SQLite cannot keep a trigger
// quiet for copied rows, so start-up names it unless the table allows it.
func TestTriggersRefusedAtStartupUnlessAllowed(t *testing.T) {
	e := newEnv(t, "EU", "US")
	if _, err := e.dbs["US"].ExecContext(t.Context(), `CREATE TABLE audit (what TEXT);
		CREATE TRIGGER notes_audit AFTER INSERT ON notes BEGIN INSERT INTO audit VALUES (NEW.tenant); END`); err != nil {
		t.Fatal(err)
	}
	peers := map[string]Peer{"EU": LocalPeer(e.stores["EU"]), "US": LocalPeer(e.stores["US"])}
	s := New(e.cfg, e.stores, peers, Options{Logger: quietLogger(), Now: e.clock.Now})
	t.Cleanup(s.Close)
	err := s.CheckSchema(t.Context())
	if realmhook.ErrorCode(err) != realmhook.EINVALID || !strings.Contains(err.Error(), "notes_audit") || !strings.Contains(err.Error(), "table notes") {
		t.Fatalf("CheckSchema = %v, want EINVALID naming table notes and trigger notes_audit", err)
	}
	cfg := e.cfg
	cfg.Tables = []store.Table{notesTable}
	cfg.Tables[0].AllowTriggers = true
	s = e.service(cfg, nil) // checks the schema, fails the test on error
	tn := e.mustTenant("EU", "acme", 1, 3)
	if m := mustMigrate(t, s, "EU", tn, e.req("m1", "US")); m.State != realmhook.MigrationReadyToCommit {
		t.Fatalf("migration = %s %s", m.State, m.Message)
	}
}

// TestSequencesAdvancedBeforeReady: the target's rowid sequence (SQLite
// AUTOINCREMENT) is past the copied rows at ready-to-commit.
func TestSequencesAdvancedBeforeReady(t *testing.T) {
	e := newEnv(t, "EU", "US")
	for _, db := range e.dbs {
		if _, err := db.ExecContext(t.Context(), `CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.dbs["EU"].ExecContext(t.Context(), `INSERT INTO events (id, tenant) VALUES (40, 'acme'), (41, 'acme')`); err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.Tables = []store.Table{notesTable, {Name: "events", TenantColumn: "tenant", Key: []string{"id"}}}
	s := e.service(cfg, nil)
	tn := e.mustTenant("EU", "acme", 1, 1)
	if m := mustMigrate(t, s, "EU", tn, e.req("m1", "US")); m.State != realmhook.MigrationReadyToCommit {
		t.Fatalf("migration = %s %s", m.State, m.Message)
	}
	if _, err := e.dbs["US"].ExecContext(t.Context(), `INSERT INTO events (tenant) VALUES ('other')`); err != nil {
		t.Fatalf("the app's next insert in the target: %v", err)
	}
	var id int
	if err := e.dbs["US"].QueryRowContext(t.Context(), `SELECT id FROM events WHERE tenant = 'other'`).Scan(&id); err != nil || id != 42 {
		t.Fatalf("next id = %d (%v), want 42", id, err)
	}
}
