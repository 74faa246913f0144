package sqlite

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/realmhook/realmhook/store"
)

// TestStored: a value from PostgreSQL lands as SQLite keeps it for the
// column's affinity, exactly, or is refused.
func TestStored(t *testing.T) {
	day := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	at := time.Date(2024, 2, 29, 13, 45, 56, 123456000, time.UTC)
	for _, tc := range []struct {
		decl string
		v    any
		want any // nil with refused
		bad  bool
	}{
		{"INTEGER", int64(math.MinInt64), int64(math.MinInt64), false},
		{"TEXT", int64(42), "42", false},
		{"REAL", int64(1 << 53), float64(1 << 53), false},
		{"REAL", int64(1<<53 + 1), nil, true},
		{"REAL", 0.1, 0.1, false},
		{"REAL", math.NaN(), nil, true},
		{"REAL", math.Copysign(0, -1), nil, true},
		{"NUMERIC", 5.0, int64(5), false},
		{"TEXT", 0.1, nil, true},
		{"BOOLEAN", true, int64(1), false},
		{"DATE", day, "2024-02-29", false},
		{"DATE", at, nil, true},
		{"TIMESTAMP", at, "2024-02-29 13:45:56.123456", false},
		{"TIMESTAMPTZ", at, "2024-02-29 13:45:56.123456+00:00", false},
		{"DATETIME", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), nil, true},
		{"DATE", time.Date(-43, 3, 15, 0, 0, 0, 0, time.UTC), nil, true},
		{"DATE", store.Infinity(1), nil, true},
		{"INTEGER", time.Unix(1700000000, 0), int64(1700000000), false},
		{"NUMERIC", "1.5", 1.5, false},
		{"NUMERIC", "1.50", nil, true},
		{"NUMERIC", "007", nil, true},
		{"NUMERIC", "42", int64(42), false},
		{"NUMERIC", "123456789012345678901234567890", nil, true},
		{"NUMERIC", "abc", "abc", false},
		{"TEXT", "1.50", "1.50", false},
		{"", "1.50", "1.50", false},
		{"BLOB", []byte{0}, []byte{0}, false},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.decl, tc.v), func(t *testing.T) {
			got, err := stored(affinityOf(tc.decl), tc.decl, tc.v)
			if tc.bad {
				if err == nil {
					t.Fatalf("stored = %#v, want refused", got)
				}
				return
			}
			if err != nil || fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tc.want) {
				t.Fatalf("stored = %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
}
