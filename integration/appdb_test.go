package integration

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/realmhook/realmhook/integration/pgtest"
)

// Backends of a realm's database.
const (
	sqliteBackend   = "sqlite"
	postgresBackend = "postgres"
)

// layout says which backend each realm (global, US, EU) uses in a test.
type layout struct {
	name   string
	realms map[string]string
}

var (
	allSQLite   = layout{"SQLite", map[string]string{"global": sqliteBackend, "US": sqliteBackend, "EU": sqliteBackend}}
	allPostgres = layout{"Postgres", map[string]string{"global": postgresBackend, "US": postgresBackend, "EU": postgresBackend}}
	// mixed puts EU on SQLite and US on PostgreSQL, so EU→US and back cross
	// backends in both directions.
	mixed = layout{"SQLiteEU_PostgresUS", map[string]string{"global": sqliteBackend, "US": postgresBackend, "EU": sqliteBackend}}
)

// appDB is one realm's database as the app itself reaches it: to create its
// own tables and rows, and to check what a migration left there.
type appDB struct {
	backend  string
	database string // as written in realmhook's config
	db       *sql.DB
}

// realmDBs is every realm's database in a test.
type realmDBs map[string]*appDB

// mustRealmDBs creates a fresh database per realm, with the app's notes table.
func mustRealmDBs(t testing.TB, l layout) realmDBs {
	t.Helper()
	dir := t.TempDir()
	dbs := realmDBs{}
	for realm, backend := range l.realms {
		a := &appDB{backend: backend}
		var err error
		switch backend {
		case sqliteBackend:
			path := filepath.Join(dir, strings.ToLower(realm)+".db")
			a.database = "sqlite:" + path
			a.db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
		case postgresBackend:
			a.database = pgtest.NewDatabase(t)
			a.db, err = sql.Open("pgx", a.database)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.db.Close() })
		a.mustExec(t, a.notesDDL())
		dbs[realm] = a
	}
	return dbs
}

// databases is the config's realms.<KEY>.database for each realm.
func (d realmDBs) databases() map[string]string {
	out := map[string]string{}
	for realm, a := range d {
		out[realm] = a.database
	}
	return out
}

func (a *appDB) notesDDL() string {
	if a.backend == postgresBackend {
		return `CREATE TABLE IF NOT EXISTS notes (tenant TEXT NOT NULL, id BIGINT NOT NULL, body TEXT, score DOUBLE PRECISION, PRIMARY KEY (tenant, id))`
	}
	return `CREATE TABLE IF NOT EXISTS notes (tenant TEXT NOT NULL, id INTEGER NOT NULL, body TEXT, score REAL, PRIMARY KEY (tenant, id))`
}

// rebind turns ? placeholders into PostgreSQL's $n.
func (a *appDB) rebind(q string) string {
	if a.backend != postgresBackend {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (a *appDB) mustExec(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := a.db.Exec(a.rebind(q), args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// mustInsertNotes inserts notes 1..n for the tenant.
func (a *appDB) mustInsertNotes(t testing.TB, clientKey string, n int) {
	t.Helper()
	tx, err := a.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	const perStmt = 200
	for start := 1; start <= n; start += perStmt {
		end := min(start+perStmt-1, n)
		var q strings.Builder
		q.WriteString("INSERT INTO notes (tenant, id, body, score) VALUES ")
		args := make([]any, 0, 4*(end-start+1))
		for i := start; i <= end; i++ {
			if i > start {
				q.WriteString(",")
			}
			q.WriteString("(?, ?, ?, ?)")
			args = append(args, clientKey, i, fmt.Sprintf("note %d of %s %s", i, clientKey, strings.Repeat("x", 120)), float64(i)/3)
		}
		if _, err := tx.Exec(a.rebind(q.String()), args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// noteStats is what a test compares between realms: count, distinct ids and
// a digest of every row, computed the same way whatever the backend.
type noteStats struct {
	Count, Distinct int
	Digest          string
}

func (a *appDB) mustNoteStats(t testing.TB, clientKey string) noteStats {
	t.Helper()
	rows, err := a.db.Query(a.rebind(`SELECT id, body, score FROM notes WHERE tenant = ? ORDER BY id`), clientKey)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	h := sha256.New()
	ids := map[int64]bool{}
	var s noteStats
	for rows.Next() {
		var id int64
		var body sql.NullString
		var score sql.NullFloat64
		if err := rows.Scan(&id, &body, &score); err != nil {
			t.Fatal(err)
		}
		s.Count++
		ids[id] = true
		fmt.Fprintf(h, "%d\x00%v\x00%s\x00%v\x00%s\n", id, body.Valid, body.String, score.Valid, strconv.FormatFloat(score.Float64, 'g', -1, 64))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	s.Distinct = len(ids)
	s.Digest = hex.EncodeToString(h.Sum(nil))[:16]
	return s
}

// forEachLayout runs a test once per database layout.
func forEachLayout(t *testing.T, layouts []layout, fn func(t *testing.T, l layout)) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) { fn(t, l) })
	}
}
