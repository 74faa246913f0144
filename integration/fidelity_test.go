package integration

import (
	"database/sql"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fidelity suite migrates a partner-style schema (a column of every
// common type with its edge values, foreign key pairs in both config orders,
// a timestamp-keyed table, a trigger, a generated column, an identity
// column) on every backend pair, and compares source and target column by
// column with the databases' own renderings of each value, not realmhook's.

// fidelityTables configures the tables: one FK pair child first, the other
// parent first; audit rows are the trigger's, never migrated.
const fidelityTables = `
tables:
  - name: kids
    tenantColumn: tenant
    key: [id]
  - name: typed
    tenantColumn: tenant
    key: [id]
    allowTriggers: true
  - name: moms
    tenantColumn: tenant
    key: [id]
  - name: owners
    tenantColumn: tenant
    key: [id]
  - name: pets
    tenantColumn: tenant
    key: [id]
  - name: ticks
    tenantColumn: tenant
    key: [at]
  - name: events
    tenantColumn: tenant
    key: [seq]
migration:
  batchRows: 3
  checkpointRows: 5
`

// commonColumns are the columns both backends hold, as "name sqliteType
// pgType": what crosses between backends.
var commonColumns = [][3]string{
	{"i8", "INTEGER", "BIGINT"},
	{"i4", "INTEGER", "INTEGER"},
	{"f8", "REAL", "DOUBLE PRECISION"},
	{"num", "NUMERIC", "NUMERIC"},
	{"numt", "TEXT", "NUMERIC"},
	{"b", "BOOLEAN", "BOOLEAN"},
	{"t", "TEXT", "TEXT"},
	{"by", "BLOB", "BYTEA"},
	{"d", "DATE", "DATE"},
	{"ts", "TIMESTAMP", "TIMESTAMP"},
	{"tz", "TIMESTAMPTZ", "TIMESTAMPTZ"},
	{"u", "TEXT", "UUID"},
	{"j", "TEXT", "JSONB"},
}

// commonRows are SQL literals, per row, for commonColumns, valid on both
// backends (SQLite's and PostgreSQL's readings are checked separately).
var commonRows = [][]string{
	{"0", "0", "0.1", "42", "'1e400'", "true", "''", "NULL", "'2024-02-29'", "'2024-02-29 13:45:56.123456'", "'2024-02-29 13:45:56.123456+00:00'", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", `'{"b": 1, "a": [1, 2.50, 100]}'`},
	{"-9223372036854775808", "2147483647", "-1.5e-300", "1.5", "'123456789012345678901234567890.123'", "false", "'ünïcode 𝄞 O''Brien'", "NULL", "'0001-01-01'", "'1999-12-31 23:59:59'", "'1970-01-01 00:00:00.000001+00:00'", "'00000000-0000-0000-0000-000000000000'", `'[]'`},
	{"9223372036854775807", "-2147483648", "1.7976931348623157e308", "-7", "'-0.000001'", "NULL", "'tab	and a newline'", "NULL", "'9999-12-31'", "'2038-01-19 03:14:08'", "'2262-04-11 23:47:16.854775+00:00'", "NULL", `'{"":null}'`},
	{"NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"},
}

// sameBackendExtras are columns and values only a same-backend copy keeps:
// each backend's own edge values.
var sameBackendExtras = map[string]struct {
	cols []string   // "name type"
	rows [][]string // literals, one row per commonRows row
}{
	postgresBackend: {
		cols: []string{"r int4range", "m money", "ttz timetz", "iv interval", "dinf date", "tsinf timestamp", "tzinf timestamptz",
			"fnan double precision", "f4 real", "nnan numeric", "n206 numeric(20,6)", "dom pos_int", "mood_v mood", "moods mood[]",
			"arr text[]", "ip inet", "tsv tsvector", "dbc date", "ch char(5)"},
		rows: [][]string{
			{"'[1,10)'", "'12.34'", "'13:45:56.123456+05:30'", "'P1Y2M3DT4H5M6.789S'", "'infinity'", "'-infinity'", "'infinity'",
				"'NaN'", "'0.1'", "'NaN'", "'1.5'", "7", "'happy'", "'{happy,sad}'", `'{"a,b",NULL,""}'`, "'192.168.0.1/24'", "'a fat cat'", "'0044-03-15 BC'", "'ab'"},
			{"'empty'", "'-0.01'", "'00:00:00-12'", "'-1 day +01:02:03'", "'-infinity'", "'infinity'", "'-infinity'",
				"'-0'", "'-3.4e38'", "'Infinity'", "'99999999999999.999999'", "1", "'sad'", "'{}'", "'{}'", "'::ffff:1.2.3.4'", "''", "'10000-01-01'", "'abcde'"},
			{"'(,)'", "NULL", "'24:00:00+00'", "'0'", "'2024-02-29'", "'2024-02-29 00:00:00'", "'2024-02-29 00:00:00+00'",
				"'Infinity'", "'1e-45'", "'-Infinity'", "'-0.000001'", "2147483647", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"},
			{"NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"},
		},
	},
	sqliteBackend: {
		cols: []string{"raw", "flag BOOLEAN", "at TIMESTAMP", "day DATE", "nanos DATETIME", "neg REAL"},
		rows: [][]string{
			{"1", "'t'", "1700000000", "'2024-02-29'", "'2024-02-29 13:45:56.123456789'", "-1e-320"},
			{"1.5", "'f'", "'2024-02-29T13:45:56+02:00'", "20240229", "'soon'", "1e308"},
			{"'text'", "2", "1.5", "x'00'", "NULL", "0.30000000000000004"},
			{"x'deadbeef'", "NULL", "NULL", "NULL", "NULL", "NULL"},
		},
	},
}

// fidelitySchema is every table's DDL for a backend; extras adds the
// same-backend columns to typed.
func fidelitySchema(backend string, extras bool) []string {
	pg := backend == postgresBackend
	var cols []string
	for _, c := range commonColumns {
		typ := c[1]
		if pg {
			typ = c[2]
		}
		cols = append(cols, c[0]+" "+typ)
	}
	if extras {
		cols = append(cols, sameBackendExtras[backend].cols...)
	}
	intType, stamp, gen := "INTEGER", "TIMESTAMP", "INTEGER GENERATED ALWAYS AS (id * 2) STORED"
	var ddl []string
	if pg {
		intType = "BIGINT"
		ddl = append(ddl,
			`CREATE DOMAIN pos_int AS integer CHECK (VALUE > 0)`,
			`CREATE TYPE mood AS ENUM ('sad', 'happy')`,
			`CREATE FUNCTION audit_typed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit VALUES (NEW.tenant); RETURN NEW; END $$`)
		gen = "BIGINT GENERATED ALWAYS AS (id * 2) STORED"
	}
	ddl = append(ddl,
		`CREATE TABLE audit (tenant TEXT)`,
		`CREATE TABLE typed (tenant TEXT NOT NULL, id `+intType+` NOT NULL, `+strings.Join(cols, ", ")+`, twice `+gen+`, PRIMARY KEY (tenant, id))`,
		`CREATE TABLE moms (tenant TEXT NOT NULL, id `+intType+` NOT NULL, PRIMARY KEY (tenant, id))`,
		`CREATE TABLE kids (tenant TEXT NOT NULL, id `+intType+` NOT NULL, mom `+intType+` NOT NULL, PRIMARY KEY (tenant, id), FOREIGN KEY (tenant, mom) REFERENCES moms (tenant, id))`,
		`CREATE TABLE owners (tenant TEXT NOT NULL, id `+intType+` NOT NULL, PRIMARY KEY (tenant, id))`,
		`CREATE TABLE pets (tenant TEXT NOT NULL, id `+intType+` NOT NULL, owner `+intType+`, PRIMARY KEY (tenant, id), FOREIGN KEY (tenant, owner) REFERENCES owners (tenant, id))`,
		`CREATE TABLE ticks (tenant TEXT NOT NULL, at `+stamp+` NOT NULL, n INTEGER, PRIMARY KEY (tenant, at))`,
	)
	if pg {
		ddl = append(ddl,
			`CREATE TRIGGER typed_audit AFTER INSERT ON typed FOR EACH ROW EXECUTE FUNCTION audit_typed()`,
			`CREATE TABLE events (tenant TEXT NOT NULL, seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY)`)
	} else {
		ddl = append(ddl,
			`CREATE TRIGGER typed_audit AFTER INSERT ON typed BEGIN INSERT INTO audit VALUES (NEW.tenant); END`,
			`CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL)`)
	}
	return ddl
}

// mustFidelityRows writes the tenant's rows; salt makes two tenants differ.
func (a *appDB) mustFidelityRows(t *testing.T, clientKey string, extras bool, salt int) {
	t.Helper()
	var names []string
	for _, c := range commonColumns {
		names = append(names, c[0])
	}
	ex := sameBackendExtras[a.backend]
	if extras {
		for _, c := range ex.cols {
			names = append(names, strings.Fields(c)[0])
		}
	}
	bytes := map[string][]string{sqliteBackend: {"x''", "x'00ff'"}, postgresBackend: {`'\x'::bytea`, `'\x00ff'::bytea`}}
	for i, r := range commonRows {
		vals := append([]string{}, r...)
		if i < 2 {
			vals[7] = bytes[a.backend][i] // by
		}
		if extras {
			vals = append(vals, ex.rows[i]...)
		}
		a.mustExec(t, fmt.Sprintf(`INSERT INTO typed (tenant, id, %s) VALUES ('%s', %d, %s)`,
			strings.Join(names, ", "), clientKey, i+1+salt, strings.Join(vals, ", ")))
	}
	for i := 1; i <= 4; i++ {
		a.mustExec(t, `INSERT INTO moms VALUES (?, ?)`, clientKey, i)
		a.mustExec(t, `INSERT INTO kids VALUES (?, ?, ?)`, clientKey, 10-i, i)
		a.mustExec(t, `INSERT INTO owners VALUES (?, ?)`, clientKey, i)
		a.mustExec(t, `INSERT INTO pets VALUES (?, ?, ?)`, clientKey, i, i)
		a.mustExec(t, `INSERT INTO events (tenant, seq) VALUES (?, ?)`, clientKey, 100*i+salt)
	}
	stamps := []string{"'2024-01-01 10:00:00'", "'2024-01-01 10:00:00.5'", "'2024-01-01 09:59:59.999999'", "'1999-01-01 00:00:00'", "'2024-02-29 12:00:00'", "'2030-06-01 00:00:00.25'"}
	for i, s := range stamps {
		a.mustExec(t, fmt.Sprintf(`INSERT INTO ticks VALUES ('%s', %s, %d)`, clientKey, s, i))
	}
}

// column reads a tenant's values of one column, by key order, in the
// database's own rendering: PostgreSQL's type and text output, SQLite's
// storage class and quote() (a REAL as the shortest text that reads back
// as its exact value).
func (a *appDB) column(t *testing.T, table, col, key, clientKey string) []string {
	t.Helper()
	q := fmt.Sprintf(`SELECT pg_typeof(%[1]s)::text, %[1]s::text, NULL FROM %[2]s WHERE tenant = ? ORDER BY %[3]s`, col, table, key)
	if a.backend == sqliteBackend {
		q = fmt.Sprintf(`SELECT typeof(%[1]s), quote(%[1]s), +%[1]s FROM %[2]s WHERE tenant = ? ORDER BY %[3]s`, col, table, key)
	}
	rows, err := a.db.Query(a.rebind(q), clientKey)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ string
		var v sql.NullString
		var raw any
		if err := rows.Scan(&typ, &v, &raw); err != nil {
			t.Fatal(err)
		}
		switch {
		case !v.Valid || typ == "null":
			out = append(out, "NULL")
		case typ == "real" && a.backend == sqliteBackend:
			out = append(out, typ+":"+strconv.FormatFloat(raw.(float64), 'g', -1, 64))
		default:
			out = append(out, typ+":"+v.String)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (a *appDB) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := a.db.QueryRow(a.rebind(q), args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// crossExpected is what each common column's values read as in a target of
// the other backend, by row: the target's own rendering, computed by hand.
var crossExpected = map[string]map[string][]string{
	postgresBackend: { // SQLite → PostgreSQL
		"i8":   {"bigint:0", "bigint:-9223372036854775808", "bigint:9223372036854775807", "NULL"},
		"i4":   {"integer:0", "integer:2147483647", "integer:-2147483648", "NULL"},
		"f8":   {"double precision:0.1", "double precision:-1.5e-300", "double precision:1.7976931348623157e+308", "NULL"},
		"num":  {"numeric:42", "numeric:1.5", "numeric:-7", "NULL"},
		"numt": {"numeric:1" + strings.Repeat("0", 400), "numeric:123456789012345678901234567890.123", "numeric:-0.000001", "NULL"},
		"b":    {"boolean:true", "boolean:false", "NULL", "NULL"},
		"t":    {"text:", "text:ünïcode 𝄞 O'Brien", "text:tab\tand a newline", "NULL"},
		"by":   {`bytea:\x`, `bytea:\x00ff`, "NULL", "NULL"},
		"d":    {"date:2024-02-29", "date:0001-01-01", "date:9999-12-31", "NULL"},
		"ts":   {"timestamp without time zone:2024-02-29 13:45:56.123456", "timestamp without time zone:1999-12-31 23:59:59", "timestamp without time zone:2038-01-19 03:14:08", "NULL"},
		"tz":   {"timestamp with time zone:2024-02-29 13:45:56.123456+00", "timestamp with time zone:1970-01-01 00:00:00.000001+00", "timestamp with time zone:2262-04-11 23:47:16.854775+00", "NULL"},
		"u":    {"uuid:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "uuid:00000000-0000-0000-0000-000000000000", "NULL", "NULL"},
		"j":    {`jsonb:{"a": [1, 2.50, 100], "b": 1}`, "jsonb:[]", `jsonb:{"": null}`, "NULL"},
	},
	sqliteBackend: { // PostgreSQL → SQLite
		"i8":   {"integer:0", "integer:-9223372036854775808", "integer:9223372036854775807", "NULL"},
		"i4":   {"integer:0", "integer:2147483647", "integer:-2147483648", "NULL"},
		"f8":   {"real:0.1", "real:-1.5e-300", "real:1.7976931348623157e+308", "NULL"},
		"num":  {"integer:42", "real:1.5", "integer:-7", "NULL"},
		"numt": {"text:'1" + strings.Repeat("0", 400) + "'", "text:'123456789012345678901234567890.123'", "text:'-0.000001'", "NULL"},
		"b":    {"integer:1", "integer:0", "NULL", "NULL"},
		"t":    {"text:''", "text:'ünïcode 𝄞 O''Brien'", "text:'tab\tand a newline'", "NULL"},
		"by":   {"blob:X''", "blob:X'00FF'", "NULL", "NULL"},
		"d":    {"text:'2024-02-29'", "text:'0001-01-01'", "text:'9999-12-31'", "NULL"},
		"ts":   {"text:'2024-02-29 13:45:56.123456'", "text:'1999-12-31 23:59:59'", "text:'2038-01-19 03:14:08'", "NULL"},
		"tz":   {"text:'2024-02-29 13:45:56.123456+00:00'", "text:'1970-01-01 00:00:00.000001+00:00'", "text:'2262-04-11 23:47:16.854775+00:00'", "NULL"},
		"u":    {"text:'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "text:'00000000-0000-0000-0000-000000000000'", "NULL", "NULL"},
		"j":    {`text:'{"a": [1, 2.50, 100], "b": 1}'`, "text:'[]'", `text:'{"": null}'`, "NULL"},
	},
}

// TestMigration_TypeFidelity migrates the schema on each backend pair and
// back, checking every value with the databases' own renderings.
func TestMigration_TypeFidelity(t *testing.T) {
	for _, tc := range []struct {
		name     string
		l        layout
		from, to string
	}{
		{"SQLiteToSQLite", allSQLite, "EU", "US"},
		{"PostgresToPostgres", allPostgres, "EU", "US"},
		{"SQLiteToPostgres", mixed, "EU", "US"},
		{"PostgresToSQLite", mixed, "US", "EU"},
	} {
		t.Run(tc.name, func(t *testing.T) { testTypeFidelity(t, tc.l, tc.from, tc.to) })
	}
}

func testTypeFidelity(t *testing.T, l layout, from, to string) {
	ks := mustKeyServer(t)
	dbs := mustRealmDBs(t, l)
	src, dst := dbs[from], dbs[to]
	same := src.backend == dst.backend
	// global too: every served realm must hold every migrated table.
	for _, realm := range []string{from, to, "global"} {
		if dbs[realm].backend == postgresBackend {
			// One session in UTC, so that timestamptz renders alike.
			dbs[realm].db.SetMaxOpenConns(1)
			dbs[realm].mustExec(t, `SET TIME ZONE 'UTC'`)
		}
		for _, q := range fidelitySchema(dbs[realm].backend, same) {
			dbs[realm].mustExec(t, q)
		}
	}
	s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: dbs.databases(), Extra: fidelityTables})
	ten, other := newTenant(t), newTenant(t)
	mustInstall(t, s, ks, ten, from)
	mustInstall(t, s, ks, other, to)
	src.mustFidelityRows(t, ten.ClientKey, same, 0)
	dst.mustFidelityRows(t, other.ClientKey, same, 1000) // a bystander in the target

	cols := []string{"id", "twice"}
	for _, c := range commonColumns {
		cols = append(cols, c[0])
	}
	if same {
		for _, c := range sameBackendExtras[src.backend].cols {
			cols = append(cols, strings.Fields(c)[0])
		}
	}
	before := map[string][]string{}
	for _, c := range cols {
		before[c] = src.column(t, "typed", c, "id", ten.ClientKey)
	}
	otherBefore := dst.column(t, "typed", "t", "id", other.ClientKey)

	m := newHostMigration(t, s, ten, from, to, time.Hour)
	m.mustHook("schedule")
	m.mustHook("start")
	if st := m.waitStatus(60*time.Second, "ready-to-commit", "failed"); st["status"] != "ready-to-commit" {
		t.Fatalf("migration %s → %s: %v", from, to, st)
	}
	m.mustHook("commit")

	for _, c := range cols {
		got := dst.column(t, "typed", c, "id", ten.ClientKey)
		want := before[c]
		if !same {
			if w, ok := crossExpected[dst.backend][c]; ok {
				want = w
			} else { // id and the generated column, computed by the target
				prefix, factor := "integer:", 1
				if dst.backend == postgresBackend {
					prefix = "bigint:"
				}
				if c == "twice" {
					factor = 2
				}
				want = nil
				for i := range commonRows {
					want = append(want, fmt.Sprintf("%s%d", prefix, factor*(i+1)))
				}
			}
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("typed.%s in %s:\n got  %q\n want %q", c, to, got, want)
		}
	}
	// Every table, every row.
	for _, tb := range [][2]string{{"moms", "id"}, {"kids", "id"}, {"owners", "id"}, {"pets", "id"}, {"events", "seq"}} {
		if n := dst.count(t, `SELECT count(*) FROM `+tb[0]+` WHERE tenant = ?`, ten.ClientKey); n != 4 {
			t.Errorf("%s holds %d of the tenant's rows, want 4", tb[0], n)
		}
	}
	gotTicks := dst.column(t, "ticks", "n", "n", ten.ClientKey)
	if len(gotTicks) != 6 {
		t.Errorf("ticks holds %v, want the 6 rows", gotTicks)
	}
	if same {
		if a, b := src.column(t, "ticks", "at", "n", ten.ClientKey), dst.column(t, "ticks", "at", "n", ten.ClientKey); strings.Join(a, "|") != strings.Join(b, "|") {
			t.Errorf("ticks.at changed: %q → %q", a, b)
		}
	}
	// The bystander's rows in the target are untouched.
	if got := dst.column(t, "typed", "t", "id", other.ClientKey); strings.Join(got, "|") != strings.Join(otherBefore, "|") {
		t.Errorf("the bystander's rows changed: %q → %q", otherBefore, got)
	}
	// PostgreSQL keeps the trigger quiet for copied rows; SQLite cannot,
	// and the table allows it.
	audits := dst.count(t, `SELECT count(*) FROM audit WHERE tenant = ?`, ten.ClientKey)
	if dst.backend == postgresBackend && audits != 0 {
		t.Errorf("the target's trigger fired %d times for copied rows", audits)
	}
	// The identity column's sequence is past the copied rows: the app's next
	// insert succeeds.
	dst.mustExec(t, `INSERT INTO events (tenant) VALUES (?)`, ten.ClientKey)
	if n := dst.count(t, `SELECT count(*) FROM events WHERE tenant = ? AND seq > 400`, ten.ClientKey); n != 1 {
		t.Errorf("the next insert's seq is not past the copied ones")
	}
	// The tenant works in the target.
	mustStatus(t, call(t, s, ten, to, http.MethodPut, "/api/v1/properties/after", []byte(`1`)), http.StatusCreated, "write in the target")
}

// TestMigration_TypeRefusals: what cannot cross exactly is refused, at
// /schedule when the type can never cross, at once with E9999 naming the
// table and column (in the events) when a value cannot.
func TestMigration_TypeRefusals(t *testing.T) {
	ks := mustKeyServer(t)
	dbs := mustRealmDBs(t, mixed)
	dbs["US"].mustExec(t, `CREATE TABLE priced (tenant TEXT NOT NULL, id BIGINT NOT NULL, price MONEY, PRIMARY KEY (tenant, id))`)
	dbs["EU"].mustExec(t, `CREATE TABLE priced (tenant TEXT NOT NULL, id INTEGER NOT NULL, price NUMERIC, PRIMARY KEY (tenant, id))`)
	dbs["US"].mustExec(t, `CREATE TABLE measures (tenant TEXT NOT NULL, id BIGINT NOT NULL, v DOUBLE PRECISION, n NUMERIC(20,6), PRIMARY KEY (tenant, id))`)
	dbs["EU"].mustExec(t, `CREATE TABLE measures (tenant TEXT NOT NULL, id INTEGER NOT NULL, v REAL, n NUMERIC, PRIMARY KEY (tenant, id))`)
	// Every served realm must hold every migrated table (global is SQLite here).
	dbs["global"].mustExec(t, `CREATE TABLE priced (tenant TEXT NOT NULL, id INTEGER NOT NULL, price NUMERIC, PRIMARY KEY (tenant, id))`)
	dbs["global"].mustExec(t, `CREATE TABLE measures (tenant TEXT NOT NULL, id INTEGER NOT NULL, v REAL, n NUMERIC, PRIMARY KEY (tenant, id))`)

	t.Run("MoneyIntoSQLiteAtSchedule", func(t *testing.T) {
		s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: dbs.databases(), Extra: "tables:\n  - name: priced\n    tenantColumn: tenant\n    key: [id]\n"})
		ten := newTenant(t)
		mustInstall(t, s, ks, ten, "US")
		m := newHostMigration(t, s, ten, "US", "EU", time.Hour)
		r := m.hook("schedule")
		if r.Status < 400 || r.JSON(t)["errorResponseCode"] != "E9999" || !strings.Contains(string(r.Body), "price") {
			t.Fatalf("schedule = %d %s, want E9999 naming column price", r.Status, r.Body)
		}
		s.stop()
	})
	t.Run("IntervalFromSQLiteAtSchedule", func(t *testing.T) {
		dbs["US"].mustExec(t, `CREATE TABLE spans (tenant TEXT NOT NULL, id BIGINT NOT NULL, d INTERVAL, PRIMARY KEY (tenant, id))`)
		dbs["EU"].mustExec(t, `CREATE TABLE spans (tenant TEXT NOT NULL, id INTEGER NOT NULL, d TEXT, PRIMARY KEY (tenant, id))`)
		dbs["global"].mustExec(t, `CREATE TABLE spans (tenant TEXT NOT NULL, id INTEGER NOT NULL, d TEXT, PRIMARY KEY (tenant, id))`)
		s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: dbs.databases(), Extra: "tables:\n  - name: spans\n    tenantColumn: tenant\n    key: [id]\n"})
		defer s.stop()
		ten := newTenant(t)
		mustInstall(t, s, ks, ten, "EU")
		r := newHostMigration(t, s, ten, "EU", "US", time.Hour).hook("schedule")
		if r.Status < 400 || r.JSON(t)["errorResponseCode"] != "E9999" || !strings.Contains(string(r.Body), "column d") {
			t.Fatalf("schedule = %d %s, want E9999 naming column d", r.Status, r.Body)
		}
	})
	for _, tc := range []struct{ name, value, col string }{
		{"NaNIntoSQLite", "'NaN'::float8", "v"},
		{"NegativeZeroIntoSQLite", "'-0'::float8", "v"},
		{"ScaleSQLiteCannotKeep", "1.500000", "n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: dbs.databases(), Extra: "tables:\n  - name: measures\n    tenantColumn: tenant\n    key: [id]\n"})
			defer s.stop()
			ten := newTenant(t)
			mustInstall(t, s, ks, ten, "US")
			dbs["US"].mustExec(t, `INSERT INTO measures (tenant, id, `+tc.col+`) VALUES (?, 1, `+tc.value+`), (?, 2, NULL)`, ten.ClientKey, ten.ClientKey)
			m := newHostMigration(t, s, ten, "US", "EU", time.Hour)
			m.mustHook("schedule")
			m.mustHook("start")
			st := m.waitStatus(60*time.Second, "ready-to-commit", "failed")
			if st["status"] != "failed" || st["errorResponseCode"] != "E9999" {
				t.Fatalf("status %v, want failed E9999", st)
			}
			if msg, _ := st["message"].(string); strings.Contains(msg, "measures") {
				t.Fatalf("the host is told the tenant's data: %q", msg)
			}
			m.mustHook("rollback")
			if n := dbs["EU"].count(t, `SELECT count(*) FROM measures WHERE tenant = ?`, ten.ClientKey); n != 0 {
				t.Fatalf("rollback left %d rows in the target", n)
			}
		})
	}
}
