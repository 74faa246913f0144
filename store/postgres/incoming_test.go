package postgres

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/realmhook/realmhook/integration/pgtest"
	"github.com/realmhook/realmhook/store"
)

// TestReadForm: a value from SQLite becomes exactly what PostgreSQL will
// hand back for it, or is refused.
func TestReadForm(t *testing.T) {
	col := func(typ string, typmod int32) column {
		return column{name: "c", typ: typ, kind: kindOf(typ), typmod: typmod}
	}
	for _, tc := range []struct {
		c    column
		v    any
		want any
		bad  bool
	}{
		{col("int4", -1), int64(1) << 31, nil, true},
		{col("int8", -1), "42", int64(42), false},
		{col("int8", -1), 1.5, nil, true},
		{col("float4", -1), 0.1, nil, true},
		{col("float4", -1), 0.5, 0.5, false},
		{col("bool", -1), int64(2), nil, true},
		{col("bool", -1), "yes", true, false},
		{col("numeric", -1), "1e400", "1" + fmt.Sprintf("%0400d", 0), false},
		{col("numeric", -1), "1.50", "1.50", false},
		{col("numeric", -1), "-0.0", "0.0", false},
		{col("numeric", -1), ".5e1", "5", false},
		{col("numeric", 20<<16|6+4), "1.5", "1.500000", false},
		{col("numeric", 20<<16|6+4), "1.1234567", nil, true},
		{col("uuid", -1), "{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", false},
		{col("uuid", -1), "a0eebc999c0b4ef8bb6d6bb9bd380a1", nil, true},
		{col("jsonb", -1), `{"bb": 1, "a": {"y": [1.0, 1e2, "\u0001é"]}, "bb": 2}`, `{"a": {"y": [1.0, 100, "\u0001é"]}, "bb": 2}`, false},
		{col("jsonb", -1), `{"a": "\u0000"}`, nil, true},
		{col("json", -1), `{"b":1,  "a":2}`, `{"b":1,  "a":2}`, false},
		{col("bpchar", 5+4), "ab", "ab   ", false},
		{col("date", -1), "2024-02-29", "2024-02-29 00:00:00 +0000 UTC", false},
		{col("date", -1), "2024-02-29 10:00:00", nil, true},
		{col("timestamp", -1), "2024-02-29T13:45:56+02:00", nil, true},
		{col("timestamptz", -1), "2024-02-29T13:45:56+02:00", "2024-02-29 11:45:56 +0000 UTC", false},
		{col("timestamptz", -1), "2024-02-29 13:45:56.123456789", nil, true},
		{col("timestamptz", -1), "-infinity", store.Infinity(-1), false},
		{col("text", -1), "a\x00b", nil, true},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.c.typ, tc.v), func(t *testing.T) {
			got, err := readForm(tc.c, tc.v)
			if tc.bad {
				if err == nil {
					t.Fatalf("readForm = %#v, want refused", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("readForm: %v", err)
			}
			if s, ok := tc.want.(string); ok && fmt.Sprint(got) != s || !ok && got != tc.want {
				t.Fatalf("readForm = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestReadFormAgreesWithPostgreSQL: for text PostgreSQL normalises, the
// form computed in Go is the text the server itself prints for the value.
func TestReadFormAgreesWithPostgreSQL(t *testing.T) {
	pool := mustPool(t)
	for _, tc := range []struct {
		typ    string
		typmod int32
		in     string
	}{
		{"jsonb", -1, `{"b": 1, "a": [1, 2.50, 1e2, -0, 1E-3, 0.1e1], "aa": {"": null, "z": true}}`},
		{"jsonb", -1, `["tab\there", "quote\"back\\slash", "\u001f\u007f", "ünï", "\ud834\udd1e", {"k": 1, "k": 2}]`},
		{"jsonb", -1, `  123.4500 `},
		{"numeric", -1, "0000.000100"},
		{"numeric", -1, "-12.5e-3"},
		{"numeric", -1, "1.2E+3"},
		{"numeric", -1, "nan"},
		{"numeric", -1, "-inf"},
		{"uuid", -1, "A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11"},
	} {
		t.Run(tc.typ+"/"+tc.in, func(t *testing.T) {
			got, err := readForm(column{name: "c", typ: tc.typ, kind: kindOf(tc.typ), typmod: tc.typmod}, tc.in)
			if err != nil {
				t.Fatalf("readForm: %v", err)
			}
			var want string
			if err := pool.QueryRow(t.Context(), "SELECT $1::"+tc.typ+"::text", tc.in).Scan(&want); err != nil {
				t.Fatalf("PostgreSQL: %v", err)
			}
			if got != want {
				t.Fatalf("readForm = %q, PostgreSQL prints %q", got, want)
			}
		})
	}
}

func mustPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	s, err := Open(t.Context(), pgtest.NewDatabase(t), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Pool()
}
