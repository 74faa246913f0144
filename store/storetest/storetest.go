// Package storetest is the conformance suite every store.Store backend must pass,
// so that the migration engine and the HTTP layers behave the same on all of them.
package storetest

import (
	"testing"

	"github.com/realmhook/realmhook/store"
)

// Harness opens fresh, empty, schema-applied stores of one backend and creates
// the app-owned test table in them.
type Harness interface {
	// Open returns a fresh empty database; it is closed by t.Cleanup.
	Open(t testing.TB) store.Store
	// CreateAppTable creates the test table `name` with columns, in this order:
	// tenant TEXT NOT NULL, id BIGINT/INTEGER NOT NULL, sub TEXT NOT NULL,
	// body TEXT, score DOUBLE/REAL, data BYTEA/BLOB, flag BOOLEAN,
	// at TIMESTAMP-ish, PRIMARY KEY (tenant, id, sub).
	CreateAppTable(t testing.TB, s store.Store, name string)
	// ReadBack is the value ReadRows returns for v (a Go value of a
	// store.Row) once CopyRows wrote it into the app table's column: the
	// backend's own stored form of it.
	ReadBack(v any) any
	// Exec runs one SQL statement the two dialects share (plain DDL) in s's
	// database, for tables the app table does not cover.
	Exec(t testing.TB, s store.Store, sql string)
	// Replica opens a second store on s's database, as another replica of
	// the realm would; it is closed by t.Cleanup.
	Replica(t testing.TB, s store.Store) store.Store
}

// AppTable describes the table CreateAppTable creates as a copyable store.Table.
var AppTable = func(name string) store.Table {
	return store.Table{Name: name, TenantColumn: "tenant", Key: []string{"id", "sub"}}
}

// AppColumns are the app table's columns in table order.
var AppColumns = []string{"tenant", "id", "sub", "body", "score", "data", "flag", "at"}

// Run runs every subtest of the contract against stores opened by h.
//
// Beyond store.Store's own documentation the suite holds a backend to this:
// times come back in UTC at microsecond precision and the zero time stays
// zero; text keys compare by bytes (UTF-8 order, no collation, no LIKE);
// a ReadRows/DeleteRows cursor holds the key values in t.Key order;
// identifiers with a double quote or NUL, a ReadRows whose columns lack a key
// column, a cursor of the wrong length and a row of the wrong length are
// EINVALID; a missing table is ENOTFOUND; a WriteRows batch that repeats an
// existing key is ECONFLICT and writes nothing; CopyRows likewise for a
// duplicate key or a bad row in any batch, and returns next's error (errors.Is)
// having written nothing; ScanRows returns its callback's error (errors.Is) and
// stops.
func Run(t *testing.T, h Harness) {
	t.Run("Tenants", func(t *testing.T) { testTenants(t, h) })
	t.Run("TenantChanges", func(t *testing.T) { testTenantChanges(t, h) })
	t.Run("Properties", func(t *testing.T) { testProperties(t, h) })
	t.Run("ListProperties", func(t *testing.T) { testListProperties(t, h) })
	t.Run("Migrations", func(t *testing.T) { testMigrations(t, h) })
	t.Run("ListMigrations", func(t *testing.T) { testListMigrations(t, h) })
	t.Run("MigrationLimit", func(t *testing.T) { testMigrationLimit(t, h) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, h) })
	t.Run("Columns", func(t *testing.T) { testColumns(t, h) })
	t.Run("ReadRows", func(t *testing.T) { testReadRows(t, h) })
	t.Run("ScanRows", func(t *testing.T) { testScanRows(t, h) })
	t.Run("WriteRows", func(t *testing.T) { testWriteRows(t, h) })
	t.Run("CopyRows", func(t *testing.T) { testCopyRows(t, h) })
	t.Run("DeleteRows", func(t *testing.T) { testDeleteRows(t, h) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, h) })
	t.Run("PropertiesTable", func(t *testing.T) { testPropertiesTable(t, h) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, h) })
	t.Run("PropertyText", func(t *testing.T) { testPropertyText(t, h) })
	t.Run("CheckTable", func(t *testing.T) { testCheckTable(t, h) })
	t.Run("TenantTransitions", func(t *testing.T) { testTenantTransitions(t, h) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, h) })
	t.Run("Snapshot", func(t *testing.T) { testSnapshot(t, h) })
	t.Run("Unavailable", func(t *testing.T) { testUnavailable(t, h) })
}
