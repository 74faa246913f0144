package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// benchTable is one table of a tenant's data: how to create it on each
// backend, what share of the tenant's rows it holds, and how each backend
// generates n rows of it for a tenant by itself (no Go memory, seconds).
type benchTable struct {
	table store.Table
	// columns are copied by the baselines, in order.
	columns string
	// tenths of the tenant's rows this table holds.
	tenths           int
	sqliteDDL, pgDDL string // "" for realmhook's own table
	sqliteGen, pgGen string // with %[1]s the tenant and %[2]d the row count
}

// propertiesTable is realmhook's own: every shape has it.
var propertiesTable = benchTable{
	table: store.PropertiesTable, columns: "client_key, key, value", tenths: 1,
	sqliteGen: `WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < %[2]d)
		INSERT INTO realmhook_properties (client_key, key, value)
		SELECT '%[1]s', printf('prop/%%09d', i), '{"n":' || i || ',"text":"' || hex(randomblob(72)) || '"}' FROM g`,
	pgGen: `INSERT INTO realmhook_properties (client_key, key, value)
		SELECT '%[1]s', 'prop/' || lpad(g::text, 9, '0'), '{"n":' || g || ',"text":"' || repeat(md5(g::text), 5) || '"}'
		FROM generate_series(1, %[2]d) g`,
}

// shapes are the tenants the bench copies, by -shape name.
var shapes = map[string][]benchTable{
	// notes: the properties and one mid-sized app table (~200 bytes a row).
	"notes": {propertiesTable, {
		table: store.Table{Name: "notes", TenantColumn: "tenant", Key: []string{"id"}}, columns: "tenant, id, body, score", tenths: 9,
		sqliteDDL: `CREATE TABLE notes (tenant TEXT NOT NULL, id INTEGER NOT NULL, body TEXT NOT NULL, score REAL NOT NULL,
			PRIMARY KEY (tenant, id))`,
		pgDDL: `CREATE TABLE notes (tenant TEXT NOT NULL, id BIGINT NOT NULL, body TEXT NOT NULL, score DOUBLE PRECISION NOT NULL,
			PRIMARY KEY (tenant, id))`,
		sqliteGen: `WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < %[2]d)
			INSERT INTO notes (tenant, id, body, score) SELECT '%[1]s', i, hex(randomblob(84)), i / 7.0 FROM g`,
		pgGen: `INSERT INTO notes (tenant, id, body, score)
			SELECT '%[1]s', g, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) || md5((g + 3)::text) || md5((g + 4)::text) || md5((g + 5)::text), g / 7.0
			FROM generate_series(1, %[2]d) g`,
	}},
	// spread: the properties, a wide table (text and a JSON document, ~1.5 KB
	// a row, a two-column key) and a narrow one with most of the rows.
	"spread": {propertiesTable, {
		table:   store.Table{Name: "pages", TenantColumn: "tenant", Key: []string{"space", "id"}},
		columns: "tenant, space, id, title, body, attrs, updated", tenths: 1,
		sqliteDDL: `CREATE TABLE pages (tenant TEXT NOT NULL, space TEXT NOT NULL, id INTEGER NOT NULL, title TEXT NOT NULL,
			body TEXT NOT NULL, attrs TEXT NOT NULL, updated TEXT NOT NULL, PRIMARY KEY (tenant, space, id))`,
		pgDDL: `CREATE TABLE pages (tenant TEXT NOT NULL, space TEXT NOT NULL, id BIGINT NOT NULL, title TEXT NOT NULL,
			body TEXT NOT NULL, attrs JSONB NOT NULL, updated TIMESTAMPTZ NOT NULL, PRIMARY KEY (tenant, space, id))`,
		sqliteGen: `WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < %[2]d)
			INSERT INTO pages (tenant, space, id, title, body, attrs, updated)
			SELECT '%[1]s', 'SP' || (i %% 50), i, 'Page ' || i, hex(randomblob(500)),
				'{"labels":["a","b"],"version":' || i || ',"owner":"' || hex(randomblob(8)) || '","meta":{"words":' || (i %% 977) || '}}',
				'2026-01-01T00:00:00Z' FROM g`,
		pgGen: `INSERT INTO pages (tenant, space, id, title, body, attrs, updated)
			SELECT '%[1]s', 'SP' || (g %% 50), g, 'Page ' || g, repeat(md5(g::text), 31),
				jsonb_build_object('labels', jsonb_build_array('a', 'b'), 'version', g, 'owner', md5((g + 1)::text), 'meta', jsonb_build_object('words', g %% 977)),
				timestamptz '2026-01-01' + g * interval '1 second'
			FROM generate_series(1, %[2]d) g`,
	}, {
		table: store.Table{Name: "events", TenantColumn: "tenant", Key: []string{"id"}}, columns: "tenant, id, kind, at", tenths: 8,
		sqliteDDL: `CREATE TABLE events (tenant TEXT NOT NULL, id INTEGER NOT NULL, kind INTEGER NOT NULL, at INTEGER NOT NULL,
			PRIMARY KEY (tenant, id))`,
		pgDDL: `CREATE TABLE events (tenant TEXT NOT NULL, id BIGINT NOT NULL, kind INTEGER NOT NULL, at BIGINT NOT NULL,
			PRIMARY KEY (tenant, id))`,
		sqliteGen: `WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < %[2]d)
			INSERT INTO events (tenant, id, kind, at) SELECT '%[1]s', i, i %% 7, 1767225600 + i FROM g`,
		pgGen: `INSERT INTO events (tenant, id, kind, at) SELECT '%[1]s', g, g %% 7, 1767225600 + g FROM generate_series(1, %[2]d) g`,
	}},
}

// shapeNames lists the shapes for messages.
func shapeNames() string {
	var ns []string
	for n := range shapes {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return strings.Join(ns, ", ")
}

// lookupShape returns the named shape.
func lookupShape(name string) ([]benchTable, error) {
	s, ok := shapes[name]
	if !ok {
		return nil, realmhook.Errorf(realmhook.EINVALID, "-shape must be one of %s, not %q", shapeNames(), name)
	}
	return s, nil
}

// otherRows is how many rows the other tenant, which must stay behind, has.
const otherRows = 5000

// rowsOf divides rows among the shape's tables by their tenths; the last
// table takes the remainder.
func rowsOf(shape []benchTable, rows int) []int {
	out := make([]int, len(shape))
	left := rows
	for i, t := range shape {
		if i == len(shape)-1 {
			out[i] = left
			break
		}
		out[i] = rows * t.tenths / 10
		left -= out[i]
	}
	return out
}

// appTables are the shape's tables the app declares (all but realmhook's own).
func appTables(shape []benchTable) []store.Table {
	var out []store.Table
	for _, t := range shape {
		if t.table.Name != store.PropertiesTable.Name {
			out = append(out, t.table)
		}
	}
	return out
}

// genStatements are the statements that generate the shape's rows for both
// tenants on a backend ("sqlite" or "postgres").
func genStatements(shape []benchTable, backend string, rows int) []string {
	var stmts []string
	for _, tenant := range []struct {
		key  string
		rows int
	}{{benchTenant, rows}, {otherTenant, otherRows}} {
		for i, n := range rowsOf(shape, tenant.rows) {
			gen := shape[i].sqliteGen
			if backend == "postgres" {
				gen = shape[i].pgGen
			}
			if n > 0 {
				stmts = append(stmts, fmt.Sprintf(gen, tenant.key, n))
			}
		}
	}
	return stmts
}

// ddl are the statements that create the shape's app tables on a backend.
func ddl(shape []benchTable, backend string) []string {
	var out []string
	for _, t := range shape {
		d := t.sqliteDDL
		if backend == "postgres" {
			d = t.pgDDL
		}
		if d != "" {
			out = append(out, d)
		}
	}
	return out
}
