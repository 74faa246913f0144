package sqlite_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/sqlite"
	"github.com/realmhook/realmhook/store/storetest"
)

// harness opens each store in its own temporary directory.
type harness struct{}

func (harness) Open(t testing.TB) store.Store {
	t.Helper()
	return mustOpen(t, filepath.Join(t.TempDir(), "realm.db"))
}

func (harness) Replica(t testing.TB, s store.Store) store.Store {
	t.Helper()
	return mustOpen(t, s.(*sqlite.Store).Path())
}

func (harness) Exec(t testing.TB, s store.Store, sql string) {
	t.Helper()
	mustExec(t, s.(*sqlite.Store).Path(), sql)
}

func (harness) CreateAppTable(t testing.TB, s store.Store, name string) {
	t.Helper()
	mustExec(t, s.(*sqlite.Store).Path(), `CREATE TABLE "`+name+`" (
		tenant TEXT NOT NULL,
		id INTEGER NOT NULL,
		sub TEXT NOT NULL,
		body TEXT,
		score REAL,
		data BLOB,
		flag BOOLEAN,
		at TIMESTAMP,
		PRIMARY KEY (tenant, id, sub))`)
}

// mustOpen opens the store at path and closes it at the end of the test.
func mustOpen(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// mustExec runs statements on the database file as the app would, beside the store.
func mustExec(t testing.TB, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("exec %q: %v", q, err)
		}
	}
}

func TestStore(t *testing.T) {
	storetest.Run(t, harness{})
}

func TestOpen_SchemaVersion(t *testing.T) {
	t.Run("NewerDatabaseRefused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "realm.db")
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		known := schemaVersion(t)
		mustExec(t, path, fmt.Sprintf(`INSERT INTO realmhook_schema_version (version, name, applied_at) VALUES (%d, 'from the future', 0)`, known+1))

		_, err = sqlite.Open(t.Context(), path, sqlite.Options{})
		want := fmt.Sprintf("database schema version %d is newer than this realmhook (%d); upgrade realmhook", known+1, known)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Open of a newer database: %v, want an error saying %q", err, want)
		}
	})

	t.Run("VersionsRecordedOnce", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "realm.db")
		for range 2 {
			s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n, max int
		if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*), MAX(version) FROM realmhook_schema_version`).Scan(&n, &max); err != nil {
			t.Fatal(err)
		}
		if want := schemaVersion(t); n != want || max != want {
			t.Fatalf("schema versions recorded: %d rows up to %d, want %d rows up to %d", n, max, want, want)
		}
	})
}

// TestOpen_PurgingSentinelBecomesState: a database from before 0003 holding a
// half-done purge, marked the old way; 0003 turns it into the purging state.
func TestOpen_PurgingSentinelBecomesState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "realm.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for _, tn := range []*realmhook.Tenant{
		{ClientKey: "ck", SharedSecret: "x", State: realmhook.TenantMoved, MigrationID: "realmhook:purging", MovedTo: "US"},
		{ClientKey: "other", SharedSecret: "x", State: realmhook.TenantActive, MigrationID: "m1"},
	} {
		if err := s.PutTenant(t.Context(), tn); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// Back to the schema before 0003: what later migrations added goes too.
	for _, q := range []string{`DROP INDEX realmhook_tenants_installation`, `DROP INDEX realmhook_tenants_cloud`,
		`ALTER TABLE realmhook_tenants DROP COLUMN cloud_id`, `DELETE FROM realmhook_schema_version WHERE version >= 3`} {
		mustExec(t, path, q)
	}
	s, err = sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.GetTenant(t.Context(), "ck")
	if err != nil || got.State != realmhook.TenantPurging || got.MigrationID != "" || got.MovedTo != "US" {
		t.Fatalf("half-purged record after 0003 = %+v, %v; want purging, no migration, moved to US", got, err)
	}
	if other, err := s.GetTenant(t.Context(), "other"); err != nil || other.State != realmhook.TenantActive || other.MigrationID != "m1" {
		t.Fatalf("0003 touched a frozen active tenant: %+v, %v", other, err)
	}
}

func TestOpen_ReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dirs", "realm.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open with missing parent directories: %v", err)
	}
	tn := &realmhook.Tenant{ClientKey: "ck", SharedSecret: "s", State: realmhook.TenantActive, InstalledAt: time.UnixMicro(1710000000123456).UTC()}
	if err := s.PutTenant(t.Context(), tn); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutProperty(t.Context(), "ck", "k", []byte(`{"kept": true}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMigration(t.Context(), &realmhook.Migration{ClientKey: "ck", ID: "m", State: realmhook.MigrationScheduled}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := mustOpen(t, path)
	got, err := s2.GetTenant(t.Context(), "ck")
	if err != nil || !got.InstalledAt.Equal(tn.InstalledAt) {
		t.Fatalf("tenant after reopen = %+v, %v", got, err)
	}
	if v, err := s2.GetProperty(t.Context(), "ck", "k"); err != nil || string(v) != `{"kept": true}` {
		t.Fatalf("property after reopen = %q, %v", v, err)
	}
	if m, err := s2.GetMigration(t.Context(), "ck", "m"); err != nil || m.State != realmhook.MigrationScheduled {
		t.Fatalf("migration after reopen = %+v, %v", m, err)
	}
}

func TestOpen_BadPath(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:realm.db", "realm.db?mode=ro", "a\x00b"} {
		t.Run(fmt.Sprintf("%q", path), func(t *testing.T) {
			_, err := sqlite.Open(t.Context(), path, sqlite.Options{})
			if code := realmhook.ErrorCode(err); code != realmhook.EINVALID {
				t.Fatalf("Open(%q) = %v, want code %s", path, err, realmhook.EINVALID)
			}
		})
	}
}

func TestStore_EventTimeFromInjectedClock(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 678901000, time.UTC)
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "realm.db"), sqlite.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := &realmhook.Migration{ClientKey: "ck", ID: "m", State: realmhook.MigrationScheduled}
	if err := s.CreateMigration(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	events, err := s.ListMigrationEvents(t.Context(), "ck", "m")
	if err != nil || len(events) != 1 || !events[0].At.Equal(now) {
		t.Fatalf("events = %+v, %v; want one at %v", events, err, now)
	}
}

// TestReadRows_StoredForms checks normalisation of values the app wrote itself,
// in the forms SQLite applications commonly use for booleans and times.
// TestReadRows_StoredForms: every value reads back as SQLite stores it, its
// storage class and bytes, whatever the column's declared type: no date is
// parsed, no boolean or integer time reinterpreted (a copy to another SQLite
// database must hand the app back exactly what it wrote).
func TestReadRows_StoredForms(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "realm.db"))
	mustExec(t, s.Path(), `CREATE TABLE legacy (tenant TEXT, id INTEGER, flag BOOLEAN, ok bool, at TIMESTAMP, dt DATETIME, tz TIMESTAMPTZ, d DATE, raw, num NUMERIC, PRIMARY KEY (tenant, id))`)
	tbl := store.Table{Name: "legacy", TenantColumn: "tenant", Key: []string{"id"}}
	cols := []string{"id", "flag", "ok", "at", "dt", "tz", "d", "raw", "num"}
	for _, tc := range []struct {
		name   string
		values string // SQL literals for flag, ok, at, dt, tz, d, raw, num
		want   store.Row
	}{
		{"Integers", `1, 0, 1714979289, 1714979289, 1714979289, 0, 42, 7`,
			store.Row{int64(1), int64(0), int64(1714979289), int64(1714979289), int64(1714979289), int64(0), int64(42), int64(7)}},
		{"Text", `'true', 'F', '2024-05-06 07:08:09.123456+00:00', '2024-05-06T09:08:09.123456789+02:00', '2024-05-06T07:08:09.123456Z', '2024-02-29', 'text', 'abc'`,
			store.Row{"true", "F", "2024-05-06 07:08:09.123456+00:00", "2024-05-06T09:08:09.123456789+02:00", "2024-05-06T07:08:09.123456Z", "2024-02-29", "text", "abc"}},
		{"Nulls", `NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`,
			store.Row{nil, nil, nil, nil, nil, nil, nil, nil}},
		{"Mixed", `'t', 2, 1.5, x'00ff', 'soon', 'never', x'00ff', 1.5`,
			store.Row{"t", int64(2), 1.5, []byte{0, 0xff}, "soon", "never", []byte{0, 0xff}, 1.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustExec(t, s.Path(), `DELETE FROM legacy`, `INSERT INTO legacy VALUES ('t', 1, `+tc.values+`)`)
			rows, err := s.ReadRows(t.Context(), tbl, cols, "t", nil, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 {
				t.Fatalf("got %d rows", len(rows))
			}
			for i, want := range tc.want {
				got := rows[0][i+1]
				if !equalValue(got, want) {
					t.Errorf("column %s = %#v (%T), want %#v (%T)", cols[i+1], got, got, want, want)
				}
			}
		})
	}

	t.Run("TimestampKey", func(t *testing.T) {
		// A key stored as text in the app's own time format pages by its
		// stored bytes: no row is read twice or skipped.
		mustExec(t, s.Path(), `CREATE TABLE ticks (tenant TEXT, at TIMESTAMP, n INTEGER, PRIMARY KEY (tenant, at))`,
			`INSERT INTO ticks VALUES ('t', '2024-01-01 10:00:00', 1), ('t', '2024-01-01T10:00:00.5Z', 2), ('t', '2024-01-01 10:00:00.25+00:00', 3), ('t', 1700000000, 4)`)
		tt := store.Table{Name: "ticks", TenantColumn: "tenant", Key: []string{"at"}}
		var got []any
		var after store.Row
		for {
			rows, err := s.ReadRows(t.Context(), tt, []string{"at", "n"}, "t", after, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) == 0 {
				break
			}
			got = append(got, rows[0][1])
			after = store.Row{rows[0][0]}
		}
		if fmt.Sprint(got) != "[4 1 3 2]" {
			t.Fatalf("paged rows %v, want [4 1 3 2] (SQLite's order: integers before text, text by bytes)", got)
		}
	})

	t.Run("UnknownColumn", func(t *testing.T) {
		// SQLite would read "nope" as a string literal; the store must refuse it.
		_, err := s.ReadRows(t.Context(), tbl, []string{"id", "nope"}, "t", nil, 10)
		if code := realmhook.ErrorCode(err); code != realmhook.EINVALID {
			t.Fatalf("ReadRows of an unknown column = %v, want %s", err, realmhook.EINVALID)
		}
	})

	t.Run("ColumnAddedLater", func(t *testing.T) {
		mustExec(t, s.Path(), `ALTER TABLE legacy ADD COLUMN extra BOOLEAN`, `UPDATE legacy SET extra = 1`)
		rows, err := s.ReadRows(t.Context(), tbl, []string{"id", "extra"}, "t", nil, 10)
		if err != nil || len(rows) != 1 || rows[0][1] != int64(1) {
			t.Fatalf("ReadRows of a new column = %v, %v; want one row with 1", rows, err)
		}
	})
}

func equalValue(got, want any) bool {
	switch w := want.(type) {
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w) && g.Location() == time.UTC
	case []byte:
		g, ok := got.([]byte)
		return ok && bytes.Equal(g, w)
	}
	return got == want
}

// BenchmarkCopy measures one tenant's copy through the primitives: CopyRows
// in batches of 1000, then a keyset ReadRows pass over the same rows.
func BenchmarkCopy(b *testing.B) {
	const rows, batch = 100_000, 1000
	h := harness{}
	for b.Loop() {
		b.StopTimer()
		s := h.Open(b)
		h.CreateAppTable(b, s, "app")
		tbl := storetest.AppTable("app")
		at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		b.StartTimer()
		for start := 0; start < rows; start += batch {
			rs := make([]store.Row, 0, batch)
			for i := start; i < start+batch; i++ {
				rs = append(rs, store.Row{"t", int64(i), "s", "body of a typical row", float64(i), []byte("0123456789"), i%2 == 0, at})
			}
			if err := storetest.WriteRows(b.Context(), s, tbl, storetest.AppColumns, rs); err != nil {
				b.Fatal(err)
			}
		}
		var after store.Row
		n := 0
		for {
			rs, err := s.ReadRows(b.Context(), tbl, storetest.AppColumns, "t", after, batch)
			if err != nil {
				b.Fatal(err)
			}
			if len(rs) == 0 {
				break
			}
			n += len(rs)
			last := rs[len(rs)-1]
			after = store.Row{last[1], last[2]}
		}
		if n != rows {
			b.Fatalf("read %d rows, want %d", n, rows)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// ReadBack: SQLite returns a value as stored: a boolean as the integer it
// was written as, a time as the UTC text it was written as.
func (harness) ReadBack(v any) any {
	switch x := v.(type) {
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05.000000-07:00")
	}
	return v
}

// schemaVersion is the newest schema version this binary knows: one per
// numbered file in migrations/.
func schemaVersion(t testing.TB) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schema migrations in migrations/: %v", err)
	}
	return len(files)
}
