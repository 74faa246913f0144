package sqlite

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// ColumnTypes returns each column's declared type as written.
func (s *Store) ColumnTypes(ctx context.Context, table string) ([]string, error) {
	info, err := s.loadTable(ctx, table)
	if err != nil {
		return nil, err
	}
	types := make([]string, len(info.columns))
	for i, c := range info.columns {
		types[i] = info.types[c]
	}
	return types, nil
}

// affinity is SQLite's column affinity of a declared type
// (https://sqlite.org/datatype3.html#determination_of_column_affinity).
type affinity byte

const (
	affInteger affinity = 'I'
	affText    affinity = 'T'
	affBlob    affinity = 'B' // no conversion at all
	affReal    affinity = 'R'
	affNumeric affinity = 'N'
)

func affinityOf(declared string) affinity {
	d := strings.ToUpper(declared)
	switch {
	case strings.Contains(d, "INT"):
		return affInteger
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return affText
	case strings.Contains(d, "BLOB"), d == "":
		return affBlob
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"):
		return affReal
	}
	return affNumeric
}

// timeForm is how a time goes into a column of the declared type: a date's
// "YYYY-MM-DD", or a timestamp's "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC,
// with "+00:00" where the type says it has a zone. Both are forms SQLite's
// date functions read, and sort in time order.
func timeForm(declared string, t time.Time) (string, error) {
	t = t.UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		return "", fmt.Errorf("year %d, outside the 1 to 9999 SQLite's date functions read", t.Year())
	}
	d := strings.ToUpper(declared)
	if strings.Contains(d, "DATE") && !strings.Contains(d, "TIME") {
		if t.Hour() != 0 || t.Minute() != 0 || t.Second() != 0 || t.Nanosecond() != 0 {
			return "", fmt.Errorf("a time of day a date cannot hold")
		}
		return t.Format("2006-01-02"), nil
	}
	s := t.Format("2006-01-02 15:04:05.999999")
	if strings.Contains(d, "TZ") || strings.Contains(d, "ZONE") {
		s += "+00:00"
	}
	return s, nil
}

// Incoming converts rows read from another backend into what SQLite
// stores for them by each column's affinity, exactly, or refuses them.
// Rows read from SQLite need nothing: they are stored classes already, and
// an INSERT keeps them. From PostgreSQL, money can never cross: its text
// is written in the source's locale, and no SQLite type holds it as a
// number exactly.
func (s *Store) Incoming(ctx context.Context, t store.Table, columns []string, from store.Source) (func(store.Row) error, error) {
	info, err := s.table(ctx, t.Name, columns)
	if err != nil {
		return nil, err
	}
	if from.Backend == s.Backend() {
		return func(store.Row) error { return nil }, nil
	}
	for i, c := range columns {
		if i < len(from.Types) && from.Types[i] == "money" {
			return nil, realmhook.Errorf(realmhook.EINVALID,
				"table %s, column %s: money cannot cross into SQLite exactly (its text is in the source's locale); store it as numeric in the source", t.Name, c)
		}
	}
	affs := make([]affinity, len(columns))
	decls := make([]string, len(columns))
	for i, c := range columns {
		decls[i] = info.types[c]
		affs[i] = affinityOf(decls[i])
	}
	keyAt := make([]int, len(t.Key))
	for i, k := range t.Key {
		keyAt[i] = slices.Index(columns, k)
	}
	return func(r store.Row) error {
		if len(r) != len(columns) {
			return realmhook.Errorf(realmhook.EINVALID, "table %s: a row has %d values for %d columns", t.Name, len(r), len(columns))
		}
		key := keyOf(r, keyAt)
		for i, v := range r {
			sv, err := stored(affs[i], decls[i], v)
			if err != nil {
				return &store.RowError{Table: t.Name, Column: columns[i], Key: key,
					Err: realmhook.Errorf(realmhook.EINVALID, "column %s (%s): cannot store %T %v exactly: %s", columns[i], decls[i], v, v, err)}
			}
			r[i] = sv
		}
		return nil
	}, nil
}

// maxExactInt is the largest integer every float64 below it holds exactly.
const maxExactInt = 1 << 53

// stored is the value SQLite keeps for v in a column of affinity a.
func stored(a affinity, declared string, v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return x, nil // a blob is never converted
	case bool:
		if x {
			return stored(a, declared, int64(1))
		}
		return stored(a, declared, int64(0))
	case time.Time:
		if a == affInteger {
			if x.Nanosecond() != 0 {
				return nil, fmt.Errorf("fractions of a second in an integer column")
			}
			return x.Unix(), nil
		}
		s, err := timeForm(declared, x)
		if err != nil {
			return nil, err
		}
		return s, nil
	case store.Infinity:
		return nil, fmt.Errorf("SQLite has no infinite date or time")
	case int64:
		switch a {
		case affText:
			return strconv.FormatInt(x, 10), nil
		case affReal:
			if x > maxExactInt || x < -maxExactInt {
				return nil, fmt.Errorf("a REAL column rounds integers beyond 2^53")
			}
			return float64(x), nil
		}
		return x, nil
	case float64:
		switch {
		case math.IsNaN(x):
			return nil, fmt.Errorf("SQLite stores NaN as NULL")
		case x == 0 && math.Signbit(x):
			return nil, fmt.Errorf("SQLite stores -0 as 0")
		case a == affText:
			return nil, fmt.Errorf("a TEXT column prints a REAL with 15 digits")
		case (a == affInteger || a == affNumeric) && x == math.Trunc(x) && math.Abs(x) < math.MaxInt64:
			// SQLite keeps a whole REAL in such a column as an INTEGER.
			return int64(x), nil
		}
		return x, nil
	case string:
		if a == affText || a == affBlob {
			return x, nil
		}
		// A numeric column turns text that reads as a number into one;
		// only text that is a number's own canonical form survives that.
		if n, err := strconv.ParseInt(x, 10, 64); err == nil {
			if strconv.FormatInt(n, 10) != x {
				return nil, fmt.Errorf("a numeric column would keep it as %d", n)
			}
			if a == affReal {
				return stored(a, declared, n)
			}
			return n, nil
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil && !strings.ContainsAny(x, "nNiIxX_") {
			if strconv.FormatFloat(f, 'g', -1, 64) != x && strconv.FormatFloat(f, 'f', -1, 64) != x {
				return nil, fmt.Errorf("a numeric column would keep it as the REAL %v", f)
			}
			return stored(a, declared, f)
		}
		return x, nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}
