// Package peertest is the contract every migration.Peer must pass: the
// in-process LocalPeer and the transfer API's client talking to a real
// transfer server run the same suite, on SQLite and on PostgreSQL, so the
// engine cannot tell which one it copies through.
package peertest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/store"
)

// Target is one fresh target realm: its store, with a database/sql handle
// for the app's table, and the Peer under test writing into it.
type Target struct {
	Store store.Store
	DB    *sql.DB
	Peer  migration.Peer
}

// Harness makes a fresh, empty Target per subtest.
type Harness func(t *testing.T) Target

// Fence is the fencing token the suite's writes carry (migration.WithFence).
const Fence = 1

// table is the app table the suite copies: every type the backend's rows
// carry.
var table = store.Table{Name: "peer_rows", TenantColumn: "tenant", Key: []string{"id"}}

const (
	tenantKey   = "peertest-tenant"
	migrationID = "peertest-migration"
)

// schema and rows, by backend: the rows are as the backend's ReadRows
// returns them, one value of each kind per column, NULLs included.
func schema(backend string) (string, []string) {
	if backend == "postgres" {
		return `CREATE TABLE peer_rows (tenant text NOT NULL, id bigint NOT NULL, f double precision, s text, b bytea,
			ok boolean, at timestamptz, d date, n numeric, PRIMARY KEY (tenant, id))`,
			[]string{"tenant", "id", "f", "s", "b", "ok", "at", "d", "n"}
	}
	return `CREATE TABLE peer_rows (tenant TEXT NOT NULL, id INTEGER NOT NULL, f REAL, s TEXT, b BLOB,
		anything, PRIMARY KEY (tenant, id))`,
		[]string{"tenant", "id", "f", "s", "b", "anything"}
}

func rows(backend string, n int) []store.Row {
	out := make([]store.Row, n)
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	for i := range out {
		id := int64(i + 1)
		var r store.Row
		if backend == "postgres" {
			r = store.Row{tenantKey, id, float64(i) / 3, fmt.Sprintf("row %d ✓", i), []byte{0, byte(i), 0xff},
				i%2 == 0, at.Add(time.Duration(i) * time.Second), time.Date(2026, 1, 1+i%28, 0, 0, 0, 0, time.UTC),
				fmt.Sprintf("%d.%03d", i, i%1000)}
			switch i % 5 {
			case 1:
				r[2], r[3], r[4], r[5], r[6], r[7], r[8] = nil, nil, nil, nil, nil, nil, nil
			case 2:
				r[7] = store.Infinity(1)
				r[6] = store.Infinity(-1)
				r[2] = math.Copysign(0, -1)
			}
		} else {
			// SQLite keeps the storage class, whatever the declared type:
			// the untyped column holds each in turn.
			var anything any
			switch i % 5 {
			case 0:
				anything = int64(-i)
			case 1:
				anything = float64(i) + 0.5
			case 2:
				anything = "text \x00 with a NUL"
			case 3:
				anything = []byte("blob")
			}
			r = store.Row{tenantKey, id, float64(i) / 3, fmt.Sprintf("row %d ✓", i), []byte{0, byte(i), 0xff}, anything}
			if i%7 == 1 {
				r[2], r[3], r[4] = nil, nil, nil
			}
		}
		out[i] = r
	}
	return out
}

// Run runs the contract against the Targets h makes.
func Run(t *testing.T, h Harness) {
	t.Run("PrepareIncoming", func(t *testing.T) { testPrepareIncoming(t, h) })
	t.Run("CopyRows", func(t *testing.T) { testCopyRows(t, h) })
	t.Run("CopyRowsNextFails", func(t *testing.T) { testCopyRowsNextFails(t, h) })
	t.Run("CopyRowsOtherTenant", func(t *testing.T) { testCopyRowsOtherTenant(t, h) })
	t.Run("CopyRowsDuplicate", func(t *testing.T) { testCopyRowsDuplicate(t, h) })
	t.Run("TrimRows", func(t *testing.T) { testTrimRows(t, h) })
	t.Run("Guarded", func(t *testing.T) { testGuarded(t, h) })
	t.Run("Incoming", func(t *testing.T) { testIncoming(t, h) })
	t.Run("CheckTables", func(t *testing.T) { testCheckTables(t, h) })
	t.Run("ActivateAndDiscard", func(t *testing.T) { testActivateAndDiscard(t, h) })
}

func fenced(t *testing.T) context.Context { return migration.WithFence(t.Context(), Fence) }

// mustTarget makes a Target with the suite's table, and the tenant
// prepared as incoming for the suite's migration.
func mustTarget(t *testing.T, h Harness) (Target, []string) {
	t.Helper()
	tg := h(t)
	ddl, cols := schema(tg.Store.Backend())
	if _, err := tg.DB.ExecContext(t.Context(), ddl); err != nil {
		t.Fatalf("create table: %v", err)
	}
	if err := tg.Peer.PrepareIncoming(fenced(t), tenant(), migrationID); err != nil {
		t.Fatalf("PrepareIncoming: %v", err)
	}
	return tg, cols
}

func tenant() *realmhook.Tenant {
	now := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	return &realmhook.Tenant{
		ClientKey: tenantKey, SharedSecret: "peertest-shared-secret", BaseURL: "https://peertest.atlassian.net",
		ProductType: "jira", Description: "peer test", AppKey: "peertest", State: realmhook.TenantActive,
		Enabled: true, MigrationID: migrationID, InstalledAt: now, UpdatedAt: now,
	}
}

// batches hands out rs in batches of n, then an empty batch.
func batches(rs []store.Row, n int) func() ([]store.Row, error) {
	return func() ([]store.Row, error) {
		b := rs[:min(n, len(rs))]
		rs = rs[len(b):]
		return b, nil
	}
}

func mustCopy(t *testing.T, tg Target, cols []string, rs []store.Row) {
	t.Helper()
	n, err := tg.Peer.CopyRows(fenced(t), tenantKey, migrationID, table, cols, batches(rs, 7))
	if err != nil {
		t.Fatalf("CopyRows: %v", err)
	}
	if n != int64(len(rs)) {
		t.Fatalf("CopyRows wrote %d rows, want %d", n, len(rs))
	}
}

func mustRead(t *testing.T, tg Target, cols []string) []store.Row {
	t.Helper()
	got, err := tg.Store.ReadRows(t.Context(), table, cols, tenantKey, nil, 10000)
	if err != nil {
		t.Fatalf("ReadRows: %v", err)
	}
	return got
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if realmhook.ErrorCode(err) != code {
		t.Fatalf("%s: %v (code %q), want code %q", what, err, realmhook.ErrorCode(err), code)
	}
}

func testPrepareIncoming(t *testing.T, h Harness) {
	tg, _ := mustTarget(t, h)
	got, err := tg.Store.GetTenant(t.Context(), tenantKey)
	if err != nil {
		t.Fatal(err)
	}
	want := tenant()
	want.State = realmhook.TenantIncoming
	if got.State != want.State || got.MigrationID != migrationID || got.SharedSecret != want.SharedSecret ||
		got.BaseURL != want.BaseURL || !got.InstalledAt.Equal(want.InstalledAt) || !got.Enabled {
		t.Fatalf("target tenant = %+v, want it incoming for %s with the source's fields", got, migrationID)
	}
	if err := tg.Peer.PrepareIncoming(fenced(t), tenant(), migrationID); err != nil {
		t.Fatalf("PrepareIncoming again: %v", err)
	}
	active := tenant()
	active.ClientKey = "peertest-active"
	active.MigrationID = ""
	if err := tg.Store.PutTenant(t.Context(), active); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "PrepareIncoming of an active tenant", tg.Peer.PrepareIncoming(fenced(t), active, "other"), realmhook.ECONFLICT)
}

func testCopyRows(t *testing.T, h Harness) {
	tg, cols := mustTarget(t, h)
	want := rows(tg.Store.Backend(), 40)
	mustCopy(t, tg, cols, want)
	got := mustRead(t, tg, cols)
	if len(got) != len(want) {
		t.Fatalf("read %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(normal(got[i]), normal(want[i])) {
			t.Fatalf("row %d:\n got %#v\nwant %#v", i, got[i], want[i])
		}
	}
	var sum migration.Checksum
	for _, r := range want {
		if err := sum.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	c, err := tg.Peer.Checksum(t.Context(), tenantKey, table, cols)
	if err != nil {
		t.Fatalf("Checksum: %v", err)
	}
	if c != sum {
		t.Fatalf("Checksum = %s, want %s (the rows' own)", c, sum)
	}
	if err := tg.Peer.AdvanceSequences(fenced(t), tenantKey, migrationID, table); err != nil {
		t.Fatalf("AdvanceSequences: %v", err)
	}
}

// normal makes times comparable with DeepEqual (the instant, in UTC).
func normal(r store.Row) store.Row {
	out := make(store.Row, len(r))
	for i, v := range r {
		if tm, ok := v.(time.Time); ok {
			v = tm.UTC().Format(time.RFC3339Nano)
		}
		out[i] = v
	}
	return out
}

var errSourceGone = errors.New("the source went away")

func testCopyRowsNextFails(t *testing.T, h Harness) {
	tg, cols := mustTarget(t, h)
	rs := rows(tg.Store.Backend(), 20)
	calls := 0
	_, err := tg.Peer.CopyRows(fenced(t), tenantKey, migrationID, table, cols, func() ([]store.Row, error) {
		calls++
		if calls == 3 {
			return nil, realmhook.Errorf(realmhook.EUNAVAILABLE, "source: %v", errSourceGone)
		}
		return rs[(calls-1)*5 : calls*5], nil
	})
	if err == nil {
		t.Fatal("CopyRows succeeded although next failed")
	}
	wantCode(t, "CopyRows whose next failed", err, realmhook.EUNAVAILABLE)
	if got := mustRead(t, tg, cols); len(got) != 0 {
		t.Fatalf("%d rows landed of a copy whose source failed, want none", len(got))
	}
}

func testCopyRowsOtherTenant(t *testing.T, h Harness) {
	tg, cols := mustTarget(t, h)
	rs := rows(tg.Store.Backend(), 10)
	rs[8] = append(store.Row{}, rs[8]...)
	rs[8][0] = "someone-else"
	_, err := tg.Peer.CopyRows(fenced(t), tenantKey, migrationID, table, cols, batches(rs, 3))
	wantCode(t, "CopyRows with another tenant's row", err, realmhook.EINVALID)
	if got := mustRead(t, tg, cols); len(got) != 0 {
		t.Fatalf("%d rows landed, want none", len(got))
	}
}

func testCopyRowsDuplicate(t *testing.T, h Harness) {
	tg, cols := mustTarget(t, h)
	rs := rows(tg.Store.Backend(), 10)
	mustCopy(t, tg, cols, rs[:5])
	_, err := tg.Peer.CopyRows(fenced(t), tenantKey, migrationID, table, cols, batches(rs[3:], 3))
	wantCode(t, "CopyRows of rows written before", err, realmhook.ECONFLICT)
	if got := mustRead(t, tg, cols); len(got) != 5 {
		t.Fatalf("%d rows, want the first copy's 5", len(got))
	}
}

func testTrimRows(t *testing.T, h Harness) {
	tg, cols := mustTarget(t, h)
	mustCopy(t, tg, cols, rows(tg.Store.Backend(), 12))
	n, err := tg.Peer.TrimRows(fenced(t), tenantKey, migrationID, table, store.Row{int64(8)})
	if err != nil || n != 4 {
		t.Fatalf("TrimRows after 8 = %d, %v; want 4", n, err)
	}
	// Resuming at the checkpoint writes the trimmed rows again.
	mustCopy(t, tg, cols, rows(tg.Store.Backend(), 12)[8:])
	if got := mustRead(t, tg, cols); len(got) != 12 {
		t.Fatalf("%d rows after trim and resume, want 12", len(got))
	}
	n, err = tg.Peer.ClearRows(fenced(t), tenantKey, migrationID, table)
	if err != nil || n != 12 {
		t.Fatalf("ClearRows = %d, %v; want 12", n, err)
	}
}

func testGuarded(t *testing.T, h Harness) {
	tg, cols := mustTarget(t, h)
	ctx := fenced(t)
	_, err := tg.Peer.CopyRows(ctx, tenantKey, "another-migration", table, cols, batches(rows(tg.Store.Backend(), 3), 3))
	wantCode(t, "CopyRows for another migration", err, realmhook.ECONFLICT)
	_, err = tg.Peer.TrimRows(ctx, tenantKey, "another-migration", table, nil)
	wantCode(t, "TrimRows for another migration", err, realmhook.ECONFLICT)
	wantCode(t, "AdvanceSequences for another migration", tg.Peer.AdvanceSequences(ctx, tenantKey, "another-migration", table), realmhook.ECONFLICT)
	_, err = tg.Peer.ClearRows(ctx, "no-such-tenant", migrationID, table)
	wantCode(t, "ClearRows of an unknown tenant", err, realmhook.ENOTFOUND)
}

func testIncoming(t *testing.T, h Harness) {
	tg, cols := mustTarget(t, h)
	types, err := tg.Store.ColumnTypes(t.Context(), table.Name)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := tg.Peer.Incoming(t.Context(), table, cols, store.Source{Backend: tg.Store.Backend(), Types: types})
	if err != nil {
		t.Fatalf("Incoming from the same backend: %v", err)
	}
	r := rows(tg.Store.Backend(), 3)[2]
	before := append(store.Row{}, r...)
	if err := conv(r); err != nil || !reflect.DeepEqual(r, before) {
		t.Fatalf("conversion from the same backend changed %v to %v (%v)", before, r, err)
	}
	_, err = tg.Peer.Incoming(t.Context(), store.Table{Name: "no_such_table", TenantColumn: "tenant", Key: []string{"id"}}, cols,
		store.Source{Backend: tg.Store.Backend(), Types: types})
	wantCode(t, "Incoming of a missing table", err, realmhook.ENOTFOUND)
}

func testCheckTables(t *testing.T, h Harness) {
	tg, _ := mustTarget(t, h)
	if err := tg.Peer.CheckTables(t.Context(), []store.Table{store.PropertiesTable, table}); err != nil {
		t.Fatalf("CheckTables: %v", err)
	}
	err := tg.Peer.CheckTables(t.Context(), []store.Table{{Name: "no_such_table", TenantColumn: "tenant", Key: []string{"id"}}})
	wantCode(t, "CheckTables of a missing table", err, realmhook.ENOTFOUND)
	err = tg.Peer.CheckTables(t.Context(), []store.Table{{Name: table.Name, TenantColumn: "tenant", Key: []string{"s"}}})
	wantCode(t, "CheckTables without a unique key", err, realmhook.EINVALID)
}

func testActivateAndDiscard(t *testing.T, h Harness) {
	tg, cols := mustTarget(t, h)
	mustCopy(t, tg, cols, rows(tg.Store.Backend(), 5))
	now := time.Date(2026, 2, 3, 5, 0, 0, 0, time.UTC)
	m := &realmhook.Migration{
		ClientKey: tenantKey, ID: migrationID, SourceRealm: "US", TargetRealm: "EU", State: realmhook.MigrationCommitted,
		StartTime: now, EndTime: now.Add(time.Hour), Progress: realmhook.Progress{TablesDone: 2, TablesTotal: 2, RowsCopied: 5, RowsTotal: 5},
		CreatedAt: now, UpdatedAt: now,
	}
	for i := range 2 { // the second is a repeat, and a no-op
		if err := tg.Peer.Activate(fenced(t), tenant(), m); err != nil {
			t.Fatalf("Activate #%d: %v", i+1, err)
		}
	}
	got, err := tg.Store.GetTenant(t.Context(), tenantKey)
	if err != nil || got.State != realmhook.TenantActive || got.MigrationID != "" {
		t.Fatalf("after Activate: %+v, %v; want active, unfrozen", got, err)
	}
	rec, err := tg.Store.GetMigration(t.Context(), tenantKey, migrationID)
	if err != nil || rec.State != realmhook.MigrationCommitted || rec.SourceRealm != "US" || !rec.EndTime.Equal(m.EndTime) || rec.Progress != m.Progress {
		t.Fatalf("migration record after Activate: %+v, %v", rec, err)
	}
	// A rollback of the commit that activated it discards it.
	for i := range 2 {
		if err := tg.Peer.Discard(fenced(t), m, []store.Table{table, store.PropertiesTable}); err != nil {
			t.Fatalf("Discard #%d: %v", i+1, err)
		}
	}
	if _, err := tg.Store.GetTenant(t.Context(), tenantKey); realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
		t.Fatalf("tenant after Discard: %v, want ENOTFOUND", err)
	}
	if got := mustRead(t, tg, cols); len(got) != 0 {
		t.Fatalf("%d rows after Discard, want none", len(got))
	}
	rec, err = tg.Store.GetMigration(t.Context(), tenantKey, migrationID)
	if err != nil || rec.State != realmhook.MigrationRolledBack {
		t.Fatalf("migration record after Discard: %+v, %v; want rolled back", rec, err)
	}
}
