package postgres

import (
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

// native reports whether pgx encodes the kind's values into COPY's binary
// format from every form they arrive in.
func (k kind) native() bool {
	switch k {
	case kindInt, kindFloat, kindBool, kindText, kindBytea, kindTimestamptz, kindTimestamp, kindDate:
		return true
	}
	return false
}

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
// store.Infinity.
func timeValue(t time.Time, inf pgtype.InfinityModifier) any {
	switch inf {
	case pgtype.Infinity:
		return store.Infinity(1)
	case pgtype.NegativeInfinity:
		return store.Infinity(-1)
	}
	return t.UTC()
}

// toColumn converts a value, possibly read from another backend, to what
// pgx encodes into column c, or EINVALID naming the column. It picks the
// conversion by the column's kind; each one accepts the forms a value of
// that kind arrives in and refuses the rest.
func toColumn(c column, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	bad := func(why string) error {
		return realmhook.Errorf(realmhook.EINVALID, "column %s (%s): cannot store %T %s", c.name, c.typ, v, why)
	}
	switch c.kind {
	case kindInt:
		return toInt(c, v, bad)
	case kindFloat:
		return toFloat(c, v, bad)
	case kindBool:
		return toBool(v, bad)
	case kindBytea:
		return toBytea(v, bad)
	case kindTimestamptz, kindTimestamp, kindDate:
		return toTime(c, v, bad)
	case kindNumeric:
		return toNumeric(v, bad)
	case kindUUID:
		return toUUID(v, bad)
	}
	return toText(v, bad)
}

// toInt takes an integer, a whole float, a boolean or an integer's text,
// within the column's range.
func toInt(c column, v any, bad func(string) error) (any, error) {
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
}

// toFloat takes a float, an integer a float64 holds exactly, or a number's
// text; into float4 only a value float4 holds exactly.
func toFloat(c column, v any, bad func(string) error) (any, error) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int64:
		if f = float64(x); int64(f) != x || f >= math.MaxInt64 {
			return nil, bad("(an integer float8 cannot hold exactly)")
		}
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
		if float64(f32) != f && !math.IsNaN(f) {
			return nil, bad("(float4 cannot hold it exactly)")
		}
		return f32, nil
	}
	if _, ok := v.(float64); ok {
		return v, nil
	}
	return f, nil
}

// toBool takes a boolean, SQLite's 0 and 1, or a boolean's text.
func toBool(v any, bad func(string) error) (any, error) {
	switch x := v.(type) {
	case bool:
		return v, nil
	case int64: // SQLite keeps booleans as integers
		if x != 0 && x != 1 {
			return nil, bad("(an integer other than 0 or 1)")
		}
		return x == 1, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "t", "true", "1", "yes", "on", "y":
			return true, nil
		case "f", "false", "0", "no", "off", "n":
			return false, nil
		}
		return nil, bad("(not a boolean)")
	}
	return nil, bad("")
}

// toBytea takes bytes, or text as its bytes.
func toBytea(v any, bad func(string) error) (any, error) {
	switch x := v.(type) {
	case []byte:
		return v, nil
	case string:
		return []byte(x), nil
	}
	return nil, bad("")
}

// toTime takes a time, ±infinity, or a time's text in a form of
// timeLayouts; a text time with an offset into a timestamp (which holds
// none) only at UTC, and a date only at midnight, so nothing is dropped.
func toTime(c column, v any, bad func(string) error) (any, error) {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case store.Infinity:
		if x < 0 {
			return infinity(c, pgtype.NegativeInfinity), nil
		}
		return infinity(c, pgtype.Infinity), nil
	case string:
		switch strings.TrimSpace(x) {
		case "infinity":
			return infinity(c, pgtype.Infinity), nil
		case "-infinity":
			return infinity(c, pgtype.NegativeInfinity), nil
		}
		var offset bool
		var ok bool
		if t, offset, ok = parseTime(x); !ok {
			return nil, bad("(not a time PostgreSQL or RFC 3339 writes)")
		}
		if offset && c.kind != kindTimestamptz {
			if _, off := t.Zone(); off != 0 {
				return nil, bad("(a time with an offset the column cannot hold)")
			}
		}
	default:
		return nil, bad("")
	}
	if t.Nanosecond()%1000 != 0 {
		return nil, bad("(finer than the microseconds PostgreSQL keeps)")
	}
	if u := t.UTC(); c.kind == kindDate && (u.Hour() != 0 || u.Minute() != 0 || u.Second() != 0 || u.Nanosecond() != 0) {
		return nil, bad("(a time of day a date cannot hold)")
	}
	if _, ok := v.(time.Time); ok && t.Location() == time.UTC {
		return v, nil
	}
	return t.UTC(), nil
}

// infinity is ±infinity as pgx encodes it into the column's type.
func infinity(c column, m pgtype.InfinityModifier) any {
	switch c.kind {
	case kindTimestamptz:
		return pgtype.Timestamptz{InfinityModifier: m, Valid: true}
	case kindTimestamp:
		return pgtype.Timestamp{InfinityModifier: m, Valid: true}
	}
	return pgtype.Date{InfinityModifier: m, Valid: true}
}

// toNumeric takes a number, or a number's text as PostgreSQL reads it.
func toNumeric(v any, bad func(string) error) (any, error) {
	switch x := v.(type) {
	case int64, int:
		return x, nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case string:
		if _, ok := parseDecimal(x); !ok {
			return nil, bad("(not a number)")
		}
		return x, nil
	}
	return nil, bad("")
}

// toUUID takes a UUID's text in any form PostgreSQL reads (braces, upper
// case, hyphens between any group of four) or its 16 bytes.
func toUUID(v any, bad func(string) error) (any, error) {
	switch x := v.(type) {
	case string:
		u, ok := parseUUID(x)
		if !ok {
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

// parseUUID reads a UUID the way PostgreSQL's uuid_in does.
func parseUUID(s string) (pgtype.UUID, bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		s = s[1 : len(s)-1]
	}
	var u pgtype.UUID
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			if i == 0 || i == len(s)-1 || n%4 != 0 || s[i-1] == '-' {
				return u, false
			}
			continue
		}
		h, ok := hexVal(s[i])
		if !ok || n >= 32 {
			return u, false
		}
		if n%2 == 0 {
			u.Bytes[n/2] = h << 4
		} else {
			u.Bytes[n/2] |= h
		}
		n++
	}
	u.Valid = n == 32
	return u, u.Valid
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// toText passes text-like and other types' values as text, which
// PostgreSQL parses into the column's type.
func toText(v any, bad func(string) error) (any, error) {
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
// offset says whether s gave one.
func parseTime(s string) (t time.Time, offset, ok bool) {
	s = strings.TrimSpace(s)
	for i, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, i < 3, true
		}
	}
	return time.Time{}, false, false
}

// parseDecimal checks s is a number PostgreSQL's numeric reads ([sign]
// digits[.digits][e[sign]digits], NaN, ±Infinity) and returns its value's
// canonical text as numeric_out would print it.
func parseDecimal(s string) (string, bool) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "nan":
		return "NaN", true
	case "infinity", "+infinity", "inf", "+inf":
		return "Infinity", true
	case "-infinity", "-inf":
		return "-Infinity", true
	}
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg, s = s[0] == '-', s[1:]
	}
	mant, exp, _ := strings.Cut(strings.ToLower(s), "e")
	whole, frac, _ := strings.Cut(mant, ".")
	if whole == "" && frac == "" || strings.Contains(frac, ".") {
		return "", false
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return "", false
			}
		}
	}
	e := 0
	if strings.Contains(strings.ToLower(s), "e") {
		var err error
		if e, err = strconv.Atoi(exp); err != nil || e > 1000 || e < -1000 {
			return "", false
		}
	}
	digits := whole + frac
	scale := len(frac) - e // digits after the point in the value
	point := len(digits) - scale
	var out string
	switch {
	case scale <= 0:
		out = digits + strings.Repeat("0", -scale)
	case point <= 0:
		out = "0." + strings.Repeat("0", -point) + digits
	default:
		out = digits[:point] + "." + digits[point:]
	}
	intPart, fracPart, hasFrac := strings.Cut(out, ".")
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	out = intPart
	if hasFrac {
		out += "." + fracPart
	}
	if neg && strings.Trim(out, "0.") != "" {
		out = "-" + out
	}
	return out, true
}
