package migration_test

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/store"
)

// wireRows hold a value of every type a store.Row may carry, with the edges
// a lossy encoding would lose: NaN's bits, -0, NUL and invalid UTF-8 in
// text, nanoseconds, ±infinity, the extreme integers.
var wireRows = []store.Row{
	{nil, int64(math.MinInt64), int64(math.MaxInt64), math.Copysign(0, -1), math.Float64frombits(0x7ff8000000000001)},
	{"", "text \x00 \xff not UTF-8", []byte{}, []byte{0, 1, 0xff}, true, false},
	{time.Unix(-62135596800, 999999999).UTC(), time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC), store.Infinity(1), store.Infinity(-1)},
	{},
}

func TestWire_RoundTrip(t *testing.T) {
	var all []byte
	for _, r := range wireRows {
		enc, err := migration.AppendRow(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := migration.DecodeRow(enc)
		if err != nil || n != len(enc) {
			t.Fatalf("DecodeRow(%v) = %v, %d of %d bytes, %v", r, got, n, len(enc), err)
		}
		if !sameRow(got, r) {
			t.Fatalf("DecodeRow = %#v, want %#v", got, r)
		}
		all = append(all, enc...)
	}
	got, err := migration.DecodeRows(all)
	if err != nil || len(got) != len(wireRows) {
		t.Fatalf("DecodeRows = %d rows, %v", len(got), err)
	}
	for i := range got {
		if !sameRow(got[i], wireRows[i]) {
			t.Fatalf("DecodeRows row %d = %#v, want %#v", i, got[i], wireRows[i])
		}
		// Equal rows hash alike on both sides.
		var a, b migration.Checksum
		if a.Add(got[i]) != nil || b.Add(wireRows[i]) != nil || a != b {
			t.Fatalf("row %d hashes differently after the round trip", i)
		}
	}
	// A cut encoding is an error, never a panic or a shorter row.
	for cut := 1; cut < len(all); cut++ {
		if rows, err := migration.DecodeRows(all[:cut]); err == nil && len(rows) == len(wireRows) {
			t.Fatalf("DecodeRows of %d of %d bytes decoded every row", cut, len(all))
		}
	}
	for _, bad := range [][]byte{{1, 'x'}, {1, 'B', 2}, {1, 'I', 0}, {1, 't', 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, {0xff}} {
		if _, _, err := migration.DecodeRow(bad); err == nil {
			t.Errorf("DecodeRow(%v) succeeded", bad)
		}
	}
}

// sameRow compares values bit for bit (NaN, -0) and times as instants.
func sameRow(a, b store.Row) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		switch x := a[i].(type) {
		case float64:
			y, ok := b[i].(float64)
			if !ok || math.Float64bits(x) != math.Float64bits(y) {
				return false
			}
		case time.Time:
			y, ok := b[i].(time.Time)
			if !ok || !x.Equal(y) {
				return false
			}
		default:
			if !reflect.DeepEqual(a[i], b[i]) {
				return false
			}
		}
	}
	return true
}
