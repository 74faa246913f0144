package postgres

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// kind groups column types by the normalised Go type a value travels as
// (see store.Row):
//
//	int2, int4, int8                      int64
//	float4, float8                        float64
//	bool                                  bool
//	text, varchar, bpchar, name           string
//	bytea                                 []byte
//	timestamptz, timestamp, date          time.Time in UTC
//	numeric, uuid, json, jsonb, and any   string: the value's text form,
//	other type (arrays, inet, interval…)  which PostgreSQL parses back exactly
//
// numeric is read as text, not float64, so that no digit is lost copying
// between PostgreSQL databases; a float64 or int64 written to a numeric column
// is stored as its value.
type kind int

const (
	kindOther kind = iota
	kindInt
	kindFloat
	kindBool
	kindText
	kindBytea
	kindTimestamptz
	kindTimestamp
	kindDate
	kindNumeric
	kindJSON
	kindUUID
)

func kindOf(typ string) kind {
	switch typ {
	case "int2", "int4", "int8":
		return kindInt
	case "float4", "float8":
		return kindFloat
	case "bool":
		return kindBool
	case "text", "varchar", "bpchar", "name":
		return kindText
	case "bytea":
		return kindBytea
	case "timestamptz":
		return kindTimestamptz
	case "timestamp":
		return kindTimestamp
	case "date":
		return kindDate
	case "numeric":
		return kindNumeric
	case "json", "jsonb":
		return kindJSON
	case "uuid":
		return kindUUID
	}
	return kindOther
}

// rowScanner decodes result rows into normalised values, reusing one set of
// scan targets for every row.
type rowScanner struct {
	cols    []column
	targets []any // nil for a column read as raw text
	// last holds each raw text column's previous value (a string, boxed
	// once), which an equal value reuses instead of allocating twice: the
	// tenant column repeats on every row.
	last []any
	// slab is where scan cuts fresh rows from, a chunk at a time.
	slab []any
}

func newRowScanner(cols []column) *rowScanner {
	sc := &rowScanner{cols: cols, targets: make([]any, len(cols))}
	for i, c := range cols {
		switch c.kind {
		case kindInt:
			sc.targets[i] = new(pgtype.Int8)
		case kindFloat:
			sc.targets[i] = new(pgtype.Float8)
		case kindBool:
			sc.targets[i] = new(pgtype.Bool)
		case kindBytea:
			sc.targets[i] = new([]byte)
		case kindTimestamptz:
			sc.targets[i] = new(pgtype.Timestamptz)
		case kindTimestamp:
			sc.targets[i] = new(pgtype.Timestamp)
		case kindDate:
			sc.targets[i] = new(pgtype.Date)
		default:
			// Text, or anything selected as ::text (selectExpr): its bytes
			// are the text in either format, so it is read raw.
			sc.targets[i] = nil
		}
	}
	sc.last = make([]any, len(cols))
	return sc
}

// slabRows is how many rows' values scan allocates at once.
const slabRows = 256

func (sc *rowScanner) scan(rows pgx.Rows) (store.Row, error) {
	n := len(sc.targets)
	if len(sc.slab) < n {
		sc.slab = make([]any, slabRows*n)
	}
	r := store.Row(sc.slab[:n:n])
	sc.slab = sc.slab[n:]
	return r, sc.scanInto(rows, r)
}

// scanInto is scan into a row the caller owns, every value overwritten.
func (sc *rowScanner) scanInto(rows pgx.Rows, r store.Row) error {
	if err := rows.Scan(sc.targets...); err != nil {
		return err
	}
	raw := rows.RawValues()
	for i, t := range sc.targets {
		r[i] = nil
		if t == nil {
			if b := raw[i]; b != nil { // nil: NULL
				if last, ok := sc.last[i].(string); !ok || last != string(b) {
					sc.last[i] = string(b)
				}
				r[i] = sc.last[i]
			}
			continue
		}
		switch v := t.(type) {
		case *pgtype.Int8:
			if v.Valid {
				r[i] = v.Int64
			}
		case *pgtype.Float8:
			if v.Valid {
				r[i] = v.Float64
			}
		case *pgtype.Bool:
			if v.Valid {
				r[i] = v.Bool
			}
		case *[]byte:
			if *v != nil {
				r[i] = *v
				*v = nil // pgx allocates a new slice per value; drop ours
			}
		case *pgtype.Timestamptz:
			if v.Valid {
				r[i] = timeValue(v.Time, v.InfinityModifier)
			}
		case *pgtype.Timestamp:
			if v.Valid {
				r[i] = timeValue(v.Time, v.InfinityModifier)
			}
		case *pgtype.Date:
			if v.Valid {
				r[i] = timeValue(v.Time, v.InfinityModifier)
			}
		}
	}
	return nil
}

// timeValue is t in UTC; ±infinity, which time.Time cannot hold, is read as
// the text PostgreSQL parses back.
func timeValue(t time.Time, inf pgtype.InfinityModifier) any {
	switch inf {
	case pgtype.Infinity:
		return "infinity"
	case pgtype.NegativeInfinity:
		return "-infinity"
	}
	return t.UTC()
}

// toColumn converts a normalised value, possibly read from another backend,
// to what pgx encodes into column c, or EINVALID naming the column.
func toColumn(c column, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	bad := func(why string) error {
		return realmhook.Errorf(realmhook.EINVALID, "column %s (%s): cannot store %T %s", c.name, c.typ, v, why)
	}
	switch c.kind {
	case kindInt:
		var n int64
		switch x := v.(type) {
		case int64:
			n = x
		case int:
			n = int64(x)
		case int32:
			n = int64(x)
		case float64:
			if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
				return nil, bad("(not a whole number in range)")
			}
			n = int64(x)
		case bool:
			if x {
				n = 1
			}
		case string:
			var err error
			if n, err = strconv.ParseInt(strings.TrimSpace(x), 10, 64); err != nil {
				return nil, bad("(not an integer)")
			}
		default:
			return nil, bad("")
		}
		switch {
		case c.typ == "int2" && (n < math.MinInt16 || n > math.MaxInt16),
			c.typ == "int4" && (n < math.MinInt32 || n > math.MaxInt32):
			return nil, bad("(out of range)")
		}
		if _, ok := v.(int64); ok {
			return v, nil // already boxed: no allocation per value
		}
		return n, nil

	case kindFloat:
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case float32:
			f = float64(x)
		case int64:
			f = float64(x)
		case int:
			f = float64(x)
		case string:
			var err error
			if f, err = strconv.ParseFloat(strings.TrimSpace(x), 64); err != nil {
				return nil, bad("(not a number)")
			}
		default:
			return nil, bad("")
		}
		if c.typ == "float4" {
			f32 := float32(f)
			if math.IsInf(float64(f32), 0) && !math.IsInf(f, 0) {
				return nil, bad("(out of range for float4)")
			}
			return f32, nil
		}
		if _, ok := v.(float64); ok {
			return v, nil
		}
		return f, nil

	case kindBool:
		switch x := v.(type) {
		case bool:
			return v, nil
		case int64: // SQLite keeps booleans as integers
			return x != 0, nil
		case int:
			return x != 0, nil
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(x))
			if err != nil {
				return nil, bad("(not a boolean)")
			}
			return b, nil
		}
		return nil, bad("")

	case kindBytea:
		switch x := v.(type) {
		case []byte:
			return v, nil
		case string:
			return []byte(x), nil
		}
		return nil, bad("")

	case kindTimestamptz, kindTimestamp, kindDate:
		switch x := v.(type) {
		case time.Time:
			if x.Location() == time.UTC {
				return v, nil
			}
			return x.UTC(), nil
		case string:
			if x == "infinity" || x == "-infinity" {
				return x, nil
			}
			t, ok := parseTime(x)
			if !ok {
				return nil, bad("(not a time PostgreSQL or RFC 3339 writes)")
			}
			return t, nil
		}
		return nil, bad("")

	case kindNumeric:
		switch x := v.(type) {
		case int64, float64, int:
			return x, nil
		case string:
			var n pgtype.Numeric
			if err := n.Scan(strings.TrimSpace(x)); err != nil {
				return nil, bad("(not a number)")
			}
			return n, nil
		}
		return nil, bad("")

	case kindUUID:
		var u pgtype.UUID
		switch x := v.(type) {
		case string:
			if err := u.Scan(strings.TrimSpace(x)); err != nil {
				return nil, bad("(not a UUID)")
			}
			return u, nil
		case []byte:
			if len(x) != 16 {
				return nil, bad("(not 16 bytes)")
			}
			return pgtype.UUID{Bytes: [16]byte(x), Valid: true}, nil
		}
		return nil, bad("")
	}

	// Text-like and other types travel as text.
	switch x := v.(type) {
	case string:
		return textArg(v, x, bad)
	case []byte:
		return textArg(v, string(x), bad)
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	}
	return nil, bad("")
}

// textArg checks s can be a text value; v is s as it came, returned as is so
// that a string is not boxed again.
func textArg(v any, s string, bad func(string) error) (any, error) {
	if !utf8.ValidString(s) {
		return nil, bad("(not valid UTF-8)")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return nil, bad("(contains a NUL byte)")
	}
	if _, ok := v.(string); ok {
		return v, nil
	}
	return s, nil
}

// timeLayouts are the forms a time may arrive in as text: RFC 3339 (Go,
// JSON), PostgreSQL's own output, and SQLite's datetime().
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// parseTime reads s in one of timeLayouts; a time without a zone is UTC.
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// checkEncodable fails with EINVALID if COPY could not encode v into column c,
// which pgx would otherwise report as a cancelled COPY without the reason's
// code. It tries what pgx's COPY does: the value as it is, then a string
// parsed as the type's text form.
func checkEncodable(m *pgtype.Map, c column, v any) error {
	if _, err := m.Encode(c.oid, pgtype.BinaryFormatCode, v, nil); err == nil {
		return nil
	}
	if s, ok := v.(string); ok {
		var parsed any
		if err := m.Scan(c.oid, pgtype.TextFormatCode, []byte(s), &parsed); err == nil {
			if _, err := m.Encode(c.oid, pgtype.BinaryFormatCode, parsed, nil); err == nil {
				return nil
			}
		}
	}
	return realmhook.Errorf(realmhook.EINVALID, "column %s (%s): cannot store %T %q", c.name, c.typ, v, fmt.Sprint(v))
}
