package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/storetest"
)

// TestCopyGeneratedTriggersSelfReference: a generated column is listed and
// computed by the target, not written; INSERT triggers are reported (SQLite
// cannot keep them quiet); a self-referencing table copies in key order
// though a row comes before the row it references.
func TestCopyGeneratedTriggersSelfReference(t *testing.T) {
	path := filepath.Join(t.TempDir(), "realm.db")
	s := mustOpen(t, path)
	mustExec(t, path,
		`CREATE TABLE items (tenant TEXT NOT NULL, id INTEGER NOT NULL, n INTEGER NOT NULL, parent INTEGER,
			doubled INTEGER GENERATED ALWAYS AS (n * 2) STORED, plus1 INTEGER AS (n + 1),
			PRIMARY KEY (tenant, id), FOREIGN KEY (tenant, parent) REFERENCES items (tenant, id))`,
		`CREATE TABLE audit (what TEXT)`,
		`CREATE TRIGGER items_audit AFTER INSERT ON items BEGIN INSERT INTO audit VALUES ('inserted'); END`,
		`CREATE TRIGGER items_touch AFTER UPDATE ON items BEGIN SELECT 1; END`)
	tbl := store.Table{Name: "items", TenantColumn: "tenant", Key: []string{"id"}}
	cols, err := s.Columns(t.Context(), "items")
	if err != nil || !slices.Equal(cols, []string{"tenant", "id", "n", "parent", "doubled", "plus1"}) {
		t.Fatalf("Columns = %v, %v; want the generated columns too", cols, err)
	}
	err = storetest.WriteRows(t.Context(), s, tbl, cols, []store.Row{
		{"t", int64(1), int64(5), int64(2), int64(10), int64(6)}, // references the next row
		{"t", int64(2), int64(6), nil, int64(12), int64(7)},
	})
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sum int64
	if err := db.QueryRow(`SELECT sum(doubled) + sum(plus1) FROM items`).Scan(&sum); err != nil || sum != 35 {
		t.Fatalf("generated columns sum to %d (%v), want 35", sum, err)
	}
	got, err := s.Triggers(t.Context(), "items")
	if err != nil || !slices.Equal(got, []string{"items_audit"}) {
		t.Fatalf("Triggers = %v, %v; want the INSERT trigger only", got, err)
	}
}
