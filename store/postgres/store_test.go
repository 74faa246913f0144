package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/integration/pgtest"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/postgres"
	"github.com/realmhook/realmhook/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// mustOpen opens a store on url, closed when the test ends.
func mustOpen(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url, postgres.Options{Logger: quietLogger})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// mustExec runs SQL on the store's database.
func mustExec(t testing.TB, s store.Store, sql string, args ...any) {
	t.Helper()
	if _, err := s.(*postgres.Store).Pool().Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

// harness runs the shared conformance suite on fresh PostgreSQL databases.
type harness struct{}

func (harness) Open(t testing.TB) store.Store {
	t.Helper()
	return mustOpen(t, pgtest.NewDatabase(t))
}

func (harness) Replica(t testing.TB, s store.Store) store.Store {
	t.Helper()
	return mustOpen(t, s.(*postgres.Store).Pool().Config().ConnConfig.ConnString())
}

func (harness) Exec(t testing.TB, s store.Store, sql string) {
	t.Helper()
	mustExec(t, s, sql)
}

func (harness) CreateAppTable(t testing.TB, s store.Store, name string) {
	t.Helper()
	mustExec(t, s, `CREATE TABLE `+pgx.Identifier{name}.Sanitize()+` (
		tenant TEXT NOT NULL,
		id BIGINT NOT NULL,
		sub TEXT NOT NULL,
		body TEXT,
		score DOUBLE PRECISION,
		data BYTEA,
		flag BOOLEAN,
		at TIMESTAMPTZ,
		PRIMARY KEY (tenant, id, sub))`)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, harness{})
}

func TestOpen(t *testing.T) {
	t.Run("RecordsSchemaVersion", func(t *testing.T) {
		s := mustOpen(t, pgtest.NewDatabase(t))
		var v int
		if err := s.Pool().QueryRow(t.Context(), "SELECT max(version) FROM realmhook_schema_version").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != schemaVersion(t) || v < 1 {
			t.Fatalf("schema version %d, want %d", v, schemaVersion(t))
		}
	})

	t.Run("PurgingSentinelBecomesState", func(t *testing.T) {
		// A database from before 0003 holding a half-done purge, marked the old
		// way; 0003 turns it into the purging state.
		url := pgtest.NewDatabase(t)
		s := mustOpen(t, url)
		mustNoErr(t, s.PutTenant(t.Context(), &realmhook.Tenant{ClientKey: "ck", SharedSecret: "x", State: realmhook.TenantMoved, MigrationID: "realmhook:purging", MovedTo: "US"}))
		mustNoErr(t, s.PutTenant(t.Context(), &realmhook.Tenant{ClientKey: "other", SharedSecret: "x", State: realmhook.TenantActive, MigrationID: "m1"}))
		// Back to the schema before 0003: what later migrations added goes too.
		mustExec(t, s, "DROP INDEX realmhook_tenants_installation")
		mustExec(t, s, "ALTER TABLE realmhook_tenants DROP COLUMN cloud_id")
		mustExec(t, s, "DELETE FROM realmhook_schema_version WHERE version >= 3")
		_ = s.Close()
		s2 := mustOpen(t, url)
		got, err := s2.GetTenant(t.Context(), "ck")
		if err != nil || got.State != realmhook.TenantPurging || got.MigrationID != "" || got.MovedTo != "US" {
			t.Fatalf("half-purged record after 0003 = %+v, %v; want purging, no migration, moved to US", got, err)
		}
		if other, err := s2.GetTenant(t.Context(), "other"); err != nil || other.State != realmhook.TenantActive || other.MigrationID != "m1" {
			t.Fatalf("0003 touched a frozen active tenant: %+v, %v", other, err)
		}
	})

	t.Run("ReopenKeepsData", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		s := mustOpen(t, url)
		mustNoErr(t, s.PutTenant(t.Context(), &realmhook.Tenant{ClientKey: "ck", SharedSecret: "x", State: realmhook.TenantActive}))
		_ = s.Close()
		s2 := mustOpen(t, url)
		if _, err := s2.GetTenant(t.Context(), "ck"); err != nil {
			t.Fatalf("tenant gone after reopen: %v", err)
		}
	})

	t.Run("NewerSchemaRefused", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		s := mustOpen(t, url)
		mustExec(t, s, "INSERT INTO realmhook_schema_version (version, name) VALUES ($1, 'from_the_future.sql')", schemaVersion(t)+1)
		_ = s.Close()
		_, err := postgres.Open(t.Context(), url, postgres.Options{Logger: quietLogger})
		if !errors.Is(err, postgres.ErrSchemaNewer) {
			t.Fatalf("Open on a newer schema: %v, want ErrSchemaNewer", err)
		}
		if !strings.Contains(err.Error(), fmt.Sprint(schemaVersion(t)+1)) {
			t.Fatalf("error %q does not name the database's version", err)
		}
	})

	t.Run("BadURL", func(t *testing.T) {
		_, err := postgres.Open(t.Context(), "postgres://user:secret@[::1", postgres.Options{Logger: quietLogger})
		if realmhook.ErrorCode(err) != realmhook.EINVALID || strings.Contains(err.Error(), "secret") {
			t.Fatalf("Open with a bad URL: %v, want EINVALID without the password", err)
		}
	})

	t.Run("RacingOpensBothSucceed", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		const n = 4
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				s, err := postgres.Open(t.Context(), url, postgres.Options{Logger: quietLogger})
				if err == nil {
					_ = s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
			}
		}
		s := mustOpen(t, url)
		var rows int
		if err := s.Pool().QueryRow(t.Context(), "SELECT count(*) FROM realmhook_schema_version").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != schemaVersion(t) {
			t.Fatalf("%d schema version rows, want %d (each migration once)", rows, schemaVersion(t))
		}
	})
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestFreezeSerialisesWithWrites holds a property write's transaction open
// while a freeze runs: the freeze must wait for it, and a write after the
// freeze must be refused.
func TestFreezeSerialisesWithWrites(t *testing.T) {
	s := mustOpen(t, pgtest.NewDatabase(t))
	tn := &realmhook.Tenant{ClientKey: "ck", SharedSecret: "x", State: realmhook.TenantActive}
	mustNoErr(t, s.PutTenant(t.Context(), tn))

	// A transaction that has locked the tenant row as a property write does.
	tx, err := s.Pool().Begin(t.Context())
	mustNoErr(t, err)
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(t.Context(), "SELECT 1 FROM realmhook_tenants WHERE client_key = 'ck' FOR SHARE"); err != nil {
		t.Fatal(err)
	}

	frozen := make(chan error, 1)
	go func() {
		f := *tn
		f.MigrationID = "mig-1"
		frozen <- s.PutTenant(context.Background(), &f)
	}()
	// The freeze must be blocked on the lock; wait until the server says so.
	mustEventually(t, func() bool {
		var waiting int
		_ = s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO realmhook_tenants%'`).Scan(&waiting)
		return waiting == 1
	})
	select {
	case err := <-frozen:
		t.Fatalf("freeze finished while a write held the tenant row: %v", err)
	default:
	}
	mustNoErr(t, tx.Commit(t.Context()))
	mustNoErr(t, <-frozen)

	_, err = s.PutProperty(t.Context(), "ck", "k", []byte(`1`))
	if realmhook.ErrorCode(err) != realmhook.EMIGRATING {
		t.Fatalf("write after freeze: %v, want EMIGRATING", err)
	}
}

// mustEventually polls cond until it holds or a deadline passes.
func mustEventually(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		<-tick.C
	}
}

// TestTypes writes and reads the column types the copy primitives handle.
func TestTypes(t *testing.T) {
	s := mustOpen(t, pgtest.NewDatabase(t))
	mustExec(t, s, `CREATE TABLE typed (
		tenant TEXT NOT NULL, k INTEGER NOT NULL,
		i2 SMALLINT, i4 INTEGER, f4 REAL, num NUMERIC(30, 10), vc VARCHAR(20), ch CHAR(3),
		u UUID, j JSONB, js JSON, ts TIMESTAMP, d DATE, iv INTERVAL, arr INTEGER[],
		PRIMARY KEY (tenant, k))`)
	tbl := store.Table{Name: "typed", TenantColumn: "tenant", Key: []string{"k"}}
	cols, err := s.Columns(t.Context(), "typed")
	mustNoErr(t, err)
	ts := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)

	for _, tc := range []struct {
		name string
		in   store.Row // values from k on
		want store.Row
	}{
		{"Native",
			store.Row{int64(1), int64(-32768), int64(2147483647), float64(1.5), "12345678901234567890.0123456789", "vc", "abc",
				"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", `{"b": 1, "a": 2}`, `{"b": 1,  "a": 2}`, ts, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "1 day 02:00:00", "{1,2,3}"},
			store.Row{int64(1), int64(-32768), int64(2147483647), float64(1.5), "12345678901234567890.0123456789", "vc", "abc",
				"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", `{"a": 2, "b": 1}`, `{"b": 1,  "a": 2}`, ts, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "1 day 02:00:00", "{1,2,3}"}},
		{"FromSQLite",
			store.Row{int64(2), "7", float64(9), int64(3), int64(42), "x", []byte("xy"),
				nil, nil, nil, "2024-01-02 03:04:05.000006", "2024-02-29", nil, nil},
			store.Row{int64(2), int64(7), int64(9), float64(3), "42.0000000000", "x", "xy ",
				nil, nil, nil, ts, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), nil, nil}},
		{"Nulls",
			store.Row{int64(3), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
			store.Row{int64(3), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := append(store.Row{"t"}, tc.in...)
			mustNoErr(t, storetest.WriteRows(t.Context(), s, tbl, cols, []store.Row{row}))
			got, err := s.ReadRows(t.Context(), tbl, cols, "t", store.Row{tc.in[0].(int64) - 1}, 1)
			mustNoErr(t, err)
			want := append(store.Row{"t"}, tc.want...)
			if len(got) != 1 {
				t.Fatalf("read %d rows, want 1", len(got))
			}
			for i := range want {
				g, w := got[0][i], want[i]
				if gt, ok := g.(time.Time); ok {
					if wt, ok := w.(time.Time); !ok || !gt.Equal(wt) || gt.Location() != time.UTC {
						t.Errorf("column %s = %v, want %v in UTC", cols[i], g, w)
					}
					continue
				}
				if fmt.Sprintf("%T %v", g, g) != fmt.Sprintf("%T %v", w, w) {
					t.Errorf("column %s = %T %v, want %T %v", cols[i], g, g, w, w)
				}
			}
		})
	}

	// A row read back writes back unchanged: the PostgreSQL→PostgreSQL copy.
	t.Run("RoundTripToAnotherDatabase", func(t *testing.T) {
		dst := mustOpen(t, pgtest.NewDatabase(t))
		var ddl string
		mustNoErr(t, s.Pool().QueryRow(t.Context(), `SELECT 'CREATE TABLE typed (' || string_agg(quote_ident(attname) || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) || ', PRIMARY KEY (tenant, k))'
			FROM pg_attribute WHERE attrelid = 'typed'::regclass AND attnum > 0 AND NOT attisdropped`).Scan(&ddl))
		mustExec(t, dst, ddl)
		rows, err := s.ReadRows(t.Context(), tbl, cols, "t", nil, 100)
		mustNoErr(t, err)
		mustNoErr(t, storetest.WriteRows(t.Context(), dst, tbl, cols, rows))
		var diff int
		for i, r := range rows {
			back, err := dst.ReadRows(t.Context(), tbl, cols, "t", store.Row{r[1].(int64) - 1}, 1)
			mustNoErr(t, err)
			if fmt.Sprint(back[0]) != fmt.Sprint(r) {
				t.Errorf("row %d changed in the copy:\n%v\n%v", i, r, back[0])
				diff++
			}
		}
		if diff == 0 && len(rows) != 3 {
			t.Fatalf("copied %d rows, want 3", len(rows))
		}
	})

	t.Run("BadValues", func(t *testing.T) {
		for _, tc := range []struct {
			col string
			v   any
		}{
			{"i2", int64(40000)},
			{"i4", int64(math.MaxInt32) + 1},
			{"i4", "seven"},
			{"i4", 1.5},
			{"f4", math.MaxFloat64},
			{"ts", "yesterday-ish"},
			{"vc", "bad\x00nul"},
			{"vc", string([]byte{0xff, 0xfe})},
			{"num", true},
			{"num", "not a number"},
			{"u", "not-a-uuid"},
			{"iv", "not an interval"},
			{"arr", "{1,x}"},
		} {
			t.Run(tc.col, func(t *testing.T) {
				err := storetest.WriteRows(t.Context(), s, tbl, []string{"tenant", "k", tc.col}, []store.Row{{"bad", int64(1), tc.v}})
				if realmhook.ErrorCode(err) != realmhook.EINVALID {
					t.Fatalf("CopyRows(%s = %#v): %v, want EINVALID", tc.col, tc.v, err)
				}
				if n, err := s.CountRows(t.Context(), tbl, "bad"); err != nil || n != 0 {
					t.Fatalf("a refused write left %d rows (%v)", n, err)
				}
			})
		}
	})
}

// TestByteOrderWithLinguisticCollation: a key column whose collation sorts
// "a" before "B" is still paged in byte order, so cursors mean the same on
// every backend.
func TestByteOrderWithLinguisticCollation(t *testing.T) {
	s := mustOpen(t, pgtest.NewDatabase(t))
	var coll string
	err := s.Pool().QueryRow(t.Context(), `SELECT collname FROM pg_collation
		WHERE collname IN ('und-x-icu', 'en-x-icu', 'en_US.utf8', 'en_US') ORDER BY collname LIMIT 1`).Scan(&coll)
	if err != nil {
		t.Fatalf("this server has no linguistic collation to test with: %v", err)
	}
	mustExec(t, s, `CREATE TABLE ling (tenant TEXT NOT NULL, name TEXT COLLATE `+pgx.Identifier{coll}.Sanitize()+` NOT NULL, PRIMARY KEY (tenant, name))`)
	tbl := store.Table{Name: "ling", TenantColumn: "tenant", Key: []string{"name"}}
	names := []string{"a", "B", "b", "A", "é", "e", "Z", "z", "日本", "_x", "aa"}
	var rows []store.Row
	for _, n := range names {
		rows = append(rows, store.Row{"t", n})
	}
	mustNoErr(t, storetest.WriteRows(t.Context(), s, tbl, []string{"tenant", "name"}, rows))

	// The collation really differs from byte order, or the test proves nothing.
	var first string
	mustNoErr(t, s.Pool().QueryRow(t.Context(), "SELECT name FROM ling WHERE name IN ('a', 'B') ORDER BY name LIMIT 1").Scan(&first))
	if first != "a" {
		t.Fatalf("collation %s sorts %q first; want a linguistic order", coll, first)
	}

	want := slices.Clone(names)
	slices.Sort(want)
	for _, limit := range []int{1, 3, 100} {
		t.Run(fmt.Sprintf("Limit%d", limit), func(t *testing.T) {
			var got []string
			var after store.Row
			for {
				page, err := s.ReadRows(t.Context(), tbl, []string{"tenant", "name"}, "t", after, limit)
				mustNoErr(t, err)
				if len(page) == 0 {
					break
				}
				for _, r := range page {
					got = append(got, r[1].(string))
				}
				after = store.Row{page[len(page)-1][1]}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("paged %q, want byte order %q", got, want)
			}
		})
	}
	n, err := s.DeleteRows(t.Context(), tbl, "t", store.Row{"Z"})
	mustNoErr(t, err)
	if wantN := len(want) - slices.Index(want, "Z") - 1; n != int64(wantN) {
		t.Fatalf("DeleteRows after Z = %d, want %d (byte order)", n, wantN)
	}
}

// TestReadRowsUsesIndex: keyset pages are served by the primary key, not by
// sorting the tenant's rows for each page.
func TestReadRowsUsesIndex(t *testing.T) {
	s := mustOpen(t, pgtest.NewDatabase(t))
	harness{}.CreateAppTable(t, s, "items")
	mustExec(t, s, `INSERT INTO items (tenant, id, sub) SELECT 't' || (g % 10), g, 's' || g FROM generate_series(1, 20000) g`)
	mustExec(t, s, `ANALYZE items`)
	var plan strings.Builder
	rows, err := s.Pool().Query(t.Context(), `EXPLAIN SELECT "id", "sub" FROM "items" WHERE "tenant" = $1 AND ("id", "sub") > ($2, $3) ORDER BY "id", "sub" LIMIT $4`, "t1", int64(5), "s5", 100)
	mustNoErr(t, err)
	for rows.Next() {
		var line string
		mustNoErr(t, rows.Scan(&line))
		plan.WriteString(line + "\n")
	}
	mustNoErr(t, rows.Err())
	if !strings.Contains(plan.String(), "Index") || strings.Contains(plan.String(), "Sort") {
		t.Fatalf("keyset read is not an index scan in key order:\n%s", plan.String())
	}
	// And ReadRows issues that query shape: its result matches.
	got, err := s.ReadRows(t.Context(), storetest.AppTable("items"), []string{"id", "sub"}, "t1", store.Row{int64(5), "s5"}, 3)
	mustNoErr(t, err)
	if fmt.Sprint(got) != "[[11 s11] [21 s21] [31 s31]]" {
		t.Fatalf("ReadRows = %v", got)
	}
}

// TestSurvivesRestart: after the server restarts, which ends every pooled
// connection, the next calls succeed without the caller retrying.
func TestSurvivesRestart(t *testing.T) {
	if src := pgtest.Source(t); src != pgtest.SourceInitdb {
		t.Logf("server from %s cannot be restarted by the test; checking the store answers", src)
	}
	s := mustOpen(t, pgtest.NewDatabase(t))
	mustNoErr(t, s.PutTenant(t.Context(), &realmhook.Tenant{ClientKey: "ck", SharedSecret: "x", State: realmhook.TenantActive}))
	harness{}.CreateAppTable(t, s, "items")
	// Fill the pool with several idle connections, all of which the restart kills.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { _, _ = s.GetTenant(t.Context(), "ck") })
	}
	wg.Wait()

	if pgtest.Source(t) == pgtest.SourceInitdb {
		pgtest.Restart(t)
	}

	for i, step := range []func() error{
		func() error { _, err := s.GetTenant(t.Context(), "ck"); return err },
		func() error { _, err := s.PutProperty(t.Context(), "ck", "k", []byte(`"v"`)); return err },
		func() error {
			return storetest.WriteRows(t.Context(), s, storetest.AppTable("items"), storetest.AppColumns,
				[]store.Row{{"ck", int64(1), "a", "b", 1.0, []byte("x"), true, time.Now().Truncate(time.Microsecond)}})
		},
		func() error { return s.Ping(t.Context()) },
	} {
		if err := step(); err != nil {
			t.Fatalf("step %d after restart: %v", i, err)
		}
	}
	if v, err := s.GetProperty(t.Context(), "ck", "k"); err != nil || string(v) != `"v"` {
		t.Fatalf("GetProperty after restart = %s, %v", v, err)
	}
}

// TestLeaseRace: of many owners racing for one free lease, exactly one wins.
func TestLeaseRace(t *testing.T) {
	s := mustOpen(t, pgtest.NewDatabase(t))
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 8
	var wg sync.WaitGroup
	won := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			won[i], errs[i] = s.AcquireLease(t.Context(), "copier", fmt.Sprintf("owner-%d", i), time.Minute, now)
		})
	}
	wg.Wait()
	winners := 0
	for i := range n {
		mustNoErr(t, errs[i])
		if won[i] {
			winners++
		}
	}
	if winners != 1 {
		t.Fatalf("%d owners won the lease, want 1", winners)
	}
}

// TestBadText: strings PostgreSQL text cannot hold (NUL, invalid UTF-8), as a
// forged JWT issuer or a property key might carry, are EINVALID, not internal.
func TestBadText(t *testing.T) {
	s := mustOpen(t, pgtest.NewDatabase(t))
	harness{}.CreateAppTable(t, s, "items")
	mustNoErr(t, s.PutTenant(t.Context(), &realmhook.Tenant{ClientKey: "ck", SharedSecret: "x", State: realmhook.TenantActive}))
	for _, bad := range []string{"nul\x00byte", "bad\xffutf8"} {
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"GetTenant", func() error { _, err := s.GetTenant(t.Context(), bad); return err }},
			{"PutTenant", func() error {
				return s.PutTenant(t.Context(), &realmhook.Tenant{ClientKey: bad, State: realmhook.TenantActive})
			}},
			{"GetProperty", func() error { _, err := s.GetProperty(t.Context(), "ck", bad); return err }},
			{"PutPropertyKey", func() error { _, err := s.PutProperty(t.Context(), "ck", bad, []byte("1")); return err }},
			{"PutPropertyValue", func() error { _, err := s.PutProperty(t.Context(), "ck", "k", []byte(`"`+bad+`"`)); return err }},
			{"DeleteProperty", func() error { return s.DeleteProperty(t.Context(), bad, "k") }},
			{"ListPropertiesPrefix", func() error { _, err := s.ListProperties(t.Context(), "ck", bad, "", 10); return err }},
			{"GetMigration", func() error { _, err := s.GetMigration(t.Context(), bad, "m"); return err }},
			{"AcquireLease", func() error { _, err := s.AcquireLease(t.Context(), bad, "o", time.Second, time.Now()); return err }},
			{"CountRows", func() error { _, err := s.CountRows(t.Context(), storetest.AppTable("items"), bad); return err }},
			{"ReadRowsCursor", func() error {
				_, err := s.ReadRows(t.Context(), storetest.AppTable("items"), storetest.AppColumns, "ck", store.Row{int64(1), bad}, 10)
				return err
			}},
		} {
			t.Run(fmt.Sprintf("%s/%q", tc.name, bad), func(t *testing.T) {
				if err := tc.call(); realmhook.ErrorCode(err) != realmhook.EINVALID {
					t.Fatalf("%v, want EINVALID", err)
				}
			})
		}
	}
}

// ReadBack: PostgreSQL returns a written time in UTC, everything else as written.
func (harness) ReadBack(v any) any {
	if tm, ok := v.(time.Time); ok {
		return tm.UTC()
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
