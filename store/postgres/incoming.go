package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// ColumnTypes returns the (base) type name of each of table's columns.
func (s *Store) ColumnTypes(ctx context.Context, table string) ([]string, error) {
	ti, err := s.lookupTable(ctx, table, true)
	if err != nil {
		return nil, err
	}
	types := make([]string, len(ti.cols))
	for i, c := range ti.cols {
		types[i] = c.typ
	}
	return types, nil
}

// Incoming converts rows read from another backend into the values this
// database will hand back for them, by each column's declared type: exact,
// or refused. Rows read from PostgreSQL need nothing: they are already in
// these terms (ReadRows' own), and COPY moves them unchanged. From SQLite,
// a column of a type realmhook cannot read as PostgreSQL would (an interval,
// a range, an array...) is refused here, before anything is copied: it
// could not be verified.
func (s *Store) Incoming(ctx context.Context, t store.Table, columns []string, from store.Source) (func(store.Row) error, error) {
	ti, err := s.lookupTable(ctx, t.Name, false)
	if err != nil {
		return nil, err
	}
	cols, err := ti.columns(columns)
	if err != nil {
		return nil, err
	}
	if from.Backend == s.Backend() {
		return func(store.Row) error { return nil }, nil
	}
	for _, c := range cols {
		if c.kind == kindOther {
			return nil, realmhook.Errorf(realmhook.EINVALID,
				"table %s, column %s: values of type %s cannot cross from %s exactly (realmhook reads int, float, numeric, bool, text, bytea, uuid, json, jsonb, date and timestamps across backends)",
				t.Name, c.name, c.typ, from.Backend)
		}
	}
	keyAt := make([]int, len(t.Key))
	for i, k := range t.Key {
		keyAt[i] = slices.Index(columns, k)
	}
	return func(r store.Row) error {
		if len(r) != len(cols) {
			return realmhook.Errorf(realmhook.EINVALID, "table %s: a row has %d values for %d columns", t.Name, len(r), len(cols))
		}
		key := keyOf(r, keyAt)
		for i, c := range cols {
			v, err := readForm(c, r[i])
			if err != nil {
				return &store.RowError{Table: t.Name, Column: c.name, Key: key, Err: err}
			}
			r[i] = v
		}
		return nil
	}, nil
}

// readForm is what ReadRows returns for v once written into column c.
func readForm(c column, v any) (any, error) {
	w, err := toColumn(c, v)
	if err != nil || w == nil {
		return nil, err
	}
	bad := func(why string) error {
		return realmhook.Errorf(realmhook.EINVALID, "column %s (%s): cannot store %T %s", c.name, c.typ, v, why)
	}
	switch x := w.(type) {
	case float32:
		return float64(x), nil
	case pgtype.Timestamptz:
		return timeValue(x.Time, x.InfinityModifier), nil
	case pgtype.Timestamp:
		return timeValue(x.Time, x.InfinityModifier), nil
	case pgtype.Date:
		return timeValue(x.Time, x.InfinityModifier), nil
	case time.Time:
		if c.kind == kindDate {
			return time.Date(x.Year(), x.Month(), x.Day(), 0, 0, 0, 0, time.UTC), nil
		}
		return x.UTC(), nil
	case pgtype.UUID:
		return fmt.Sprintf("%x-%x-%x-%x-%x", x.Bytes[0:4], x.Bytes[4:6], x.Bytes[6:8], x.Bytes[8:10], x.Bytes[10:16]), nil
	}
	switch c.kind {
	case kindNumeric:
		var text string
		switch x := w.(type) {
		case int64:
			text = strconv.FormatInt(x, 10)
		case int:
			text = strconv.Itoa(x)
		case string:
			text = x
		}
		d, ok := parseDecimal(text)
		if !ok {
			return nil, bad("(not a number)")
		}
		return withScale(d, c.typmod, bad)
	case kindText:
		s := w.(string)
		if c.typ == "bpchar" && c.typmod > 4 {
			// char(n) pads to n characters.
			n := int(c.typmod - 4)
			if l := utf8.RuneCountInString(s); l < n {
				s += strings.Repeat(" ", n-l)
			}
		}
		return s, nil
	case kindJSON:
		s, ok := w.(string)
		if !ok || !json.Valid([]byte(s)) {
			return nil, bad("(not JSON)")
		}
		if c.typ == "json" {
			return s, nil // json keeps its text as given
		}
		return jsonbText(s, bad)
	}
	return w, nil
}

// withScale is the decimal d as numeric(p,s) stores it: padded to s digits
// after the point, or refused when it has more (PostgreSQL would round).
func withScale(d string, typmod int32, bad func(string) error) (any, error) {
	if typmod < 4 || d == "NaN" || strings.HasSuffix(d, "Infinity") {
		return d, nil
	}
	scale := int((typmod - 4) & 0xffff)
	whole, frac, _ := strings.Cut(d, ".")
	if len(frac) > scale {
		if strings.Trim(frac[scale:], "0") != "" {
			return nil, bad(fmt.Sprintf("(more than the %d digits after the point the column keeps)", scale))
		}
		frac = frac[:scale]
	}
	frac += strings.Repeat("0", scale-len(frac))
	if scale == 0 {
		return whole, nil
	}
	return whole + "." + frac, nil
}

// jsonbText is s as jsonb prints it: object keys ordered by length, then
// bytes, the last of duplicate keys kept, numbers as numeric prints them,
// and ", " and ": " between items.
func jsonbText(s string, bad func(string) error) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, bad("(not JSON)")
	}
	var buf bytes.Buffer
	if err := appendJSONB(&buf, v); err != nil {
		return nil, bad("(" + err.Error() + ")")
	}
	return buf.String(), nil
}

func appendJSONB(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(x))
	case json.Number:
		d, ok := parseDecimal(string(x))
		if !ok {
			return fmt.Errorf("number %s", x)
		}
		buf.WriteString(d)
	case string:
		return appendJSONBString(buf, x)
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteString(", ")
			}
			if err := appendJSONB(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if len(a) != len(b) {
				return len(a) - len(b)
			}
			return strings.Compare(a, b)
		})
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteString(", ")
			}
			if err := appendJSONBString(buf, k); err != nil {
				return err
			}
			buf.WriteString(": ")
			if err := appendJSONB(buf, x[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	}
	return nil
}

// appendJSONBString escapes as PostgreSQL's escape_json does.
func appendJSONBString(buf *bytes.Buffer, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("a \\u0000, which jsonb cannot hold")
	}
	buf.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			buf.WriteString(`\"`)
		case '\\':
			buf.WriteString(`\\`)
		case '\b':
			buf.WriteString(`\b`)
		case '\f':
			buf.WriteString(`\f`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		case '\t':
			buf.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(buf, `\u%04x`, r)
			} else {
				buf.WriteRune(r)
			}
		}
	}
	buf.WriteByte('"')
	return nil
}
