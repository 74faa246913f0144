package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

const appTableName = "app_items"

// Key values chosen so that numeric, signed and byte-order comparison matter:
// "B" sorts before "a", "é" after "z", and "" first.
var (
	seedIDs  = []int64{math.MinInt64, -5, 0, 1, 2, 10, 1 << 40, math.MaxInt64}
	seedSubs = []string{"a", "B", "é", "a b", "z", "a%", "日本", ""}
)

// seedRows returns one row per (id, sub) for tenant, in a scrambled order,
// with every column type and NULLs spread over the rows.
func seedRows(tenant string) []store.Row {
	var rows []store.Row
	n := 0
	for _, id := range seedIDs {
		for _, sub := range seedSubs {
			n++
			r := store.Row{tenant, id, sub,
				fmt.Sprintf("body %s/%d/%s ✓", tenant, id, sub),
				float64(n) / 4,
				[]byte{byte(n), 0, 0xff},
				n%2 == 0,
				base.Add(time.Duration(n) * 1001 * time.Microsecond),
			}
			// Spread NULLs: each nullable column is NULL in some rows.
			for col := 3; col < len(r); col++ {
				if n%(col+2) == 0 {
					r[col] = nil
				}
			}
			rows = append(rows, r)
		}
	}
	// A fixed scramble, so insertion order is not key order.
	slices.SortFunc(rows, func(a, b store.Row) int {
		return cmp.Compare(fmt.Sprint(a[4])+fmt.Sprint(a[2]), fmt.Sprint(b[4])+fmt.Sprint(b[2]))
	})
	return rows
}

// normalised is what a backend must return for written rows: each value read back in its stored form (Harness.ReadBack).
func normalised(h Harness, rows []store.Row) []store.Row {
	out := make([]store.Row, len(rows))
	for i, r := range rows {
		c := slices.Clone(r)
		for j, v := range c {
			c[j] = h.ReadBack(v)
		}
		out[i] = c
	}
	return out
}

// byKey sorts app-table rows (all columns) by (id, sub) in byte order.
func byKey(rows []store.Row) []store.Row {
	out := slices.Clone(rows)
	slices.SortFunc(out, func(a, b store.Row) int {
		return cmp.Or(cmp.Compare(a[1].(int64), b[1].(int64)), cmp.Compare(a[2].(string), b[2].(string)))
	})
	return out
}

// mustSeedApp creates the app table and writes two tenants' seed rows to it.
func mustSeedApp(t testing.TB, h Harness, s store.Store) (t1, t2 []store.Row) {
	t.Helper()
	h.CreateAppTable(t, s, appTableName)
	t1, t2 = seedRows("t1"), seedRows("t2")
	mustNoErr(t, WriteRows(t.Context(), s, AppTable(appTableName), AppColumns, t1), "WriteRows t1")
	mustNoErr(t, WriteRows(t.Context(), s, AppTable(appTableName), AppColumns, t2), "WriteRows t2")
	return t1, t2
}

// mustReadAll pages through a tenant's rows with ReadRows.
func mustReadAll(t testing.TB, s store.Store, tbl store.Table, columns []string, clientKey string, limit int) []store.Row {
	t.Helper()
	keyIdx := make([]int, len(tbl.Key))
	for i, k := range tbl.Key {
		keyIdx[i] = slices.Index(columns, k)
	}
	var all []store.Row
	var after store.Row
	for page := 0; ; page++ {
		if page > 100000 {
			t.Fatal("ReadRows pagination did not end")
		}
		rows, err := s.ReadRows(t.Context(), tbl, columns, clientKey, after, limit)
		mustNoErr(t, err, "ReadRows")
		if len(rows) > limit {
			t.Fatalf("ReadRows returned %d rows, limit %d", len(rows), limit)
		}
		if len(rows) == 0 {
			return all
		}
		all = append(all, rows...)
		last := rows[len(rows)-1]
		after = make(store.Row, len(keyIdx))
		for i, j := range keyIdx {
			after[i] = last[j]
		}
	}
}

func testColumns(t *testing.T, h Harness) {
	s := h.Open(t)
	h.CreateAppTable(t, s, appTableName)
	got, err := s.Columns(t.Context(), appTableName)
	mustNoErr(t, err, "Columns")
	if !slices.Equal(got, AppColumns) {
		t.Fatalf("Columns = %v, want %v", got, AppColumns)
	}
	_, err = s.Columns(t.Context(), "no_such_table")
	mustCode(t, err, realmhook.ENOTFOUND)
}

func testReadRows(t *testing.T, h Harness) {
	s := h.Open(t)
	t1, t2 := mustSeedApp(t, h, s)
	tbl := AppTable(appTableName)

	for _, limit := range []int{1, 7, 64, 1000} {
		t.Run(fmt.Sprintf("AllColumnsLimit%d", limit), func(t *testing.T) {
			mustSameRows(t, mustReadAll(t, s, tbl, AppColumns, "t1", limit), normalised(h, byKey(t1)))
		})
	}

	t.Run("OtherTenant", func(t *testing.T) {
		mustSameRows(t, mustReadAll(t, s, tbl, AppColumns, "t2", 10), normalised(h, byKey(t2)))
	})

	t.Run("NoRows", func(t *testing.T) {
		rows, err := s.ReadRows(t.Context(), tbl, AppColumns, "t3", nil, 10)
		mustNoErr(t, err, "ReadRows")
		if len(rows) != 0 {
			t.Fatalf("ReadRows of a tenant without rows = %d rows", len(rows))
		}
	})

	t.Run("ColumnSubsetReordered", func(t *testing.T) {
		cols := []string{"sub", "flag", "id"}
		var want []store.Row
		for _, r := range byKey(t1) {
			want = append(want, store.Row{r[2], h.ReadBack(r[6]), r[1]})
		}
		mustSameRows(t, mustReadAll(t, s, tbl, cols, "t1", 5), want)
	})

	t.Run("AfterCursor", func(t *testing.T) {
		sorted := normalised(h, byKey(t1))
		for _, i := range []int{0, 9, 30, len(sorted) - 2, len(sorted) - 1} {
			after := store.Row{sorted[i][1], sorted[i][2]}
			got, err := s.ReadRows(t.Context(), tbl, AppColumns, "t1", after, 1000)
			mustNoErr(t, err, "ReadRows")
			mustSameRows(t, got, sorted[i+1:])
		}
		// A cursor between stored keys: id 1, sub "b" (after "a b" and "a%", before "z" and "é").
		got, err := s.ReadRows(t.Context(), tbl, AppColumns, "t1", store.Row{int64(1), "b"}, 1000)
		mustNoErr(t, err, "ReadRows")
		var want []store.Row
		for _, r := range sorted {
			if id := r[1].(int64); id > 1 || (id == 1 && r[2].(string) > "b") {
				want = append(want, r)
			}
		}
		mustSameRows(t, got, want)
	})

	t.Run("ValueTypes", func(t *testing.T) {
		rows, err := s.ReadRows(t.Context(), tbl, AppColumns, "t1", nil, 1000)
		mustNoErr(t, err, "ReadRows")
		for _, r := range rows {
			for j, v := range r {
				switch v.(type) {
				case nil, int64, float64, string, []byte, bool, time.Time:
				default:
					t.Fatalf("column %s holds %T, not a normalised type", AppColumns[j], v)
				}
			}
		}
	})

	t.Run("CountRows", func(t *testing.T) {
		for _, tc := range []struct {
			tenant string
			want   int64
		}{{"t1", int64(len(t1))}, {"t2", int64(len(t2))}, {"t3", 0}} {
			got, err := s.CountRows(t.Context(), tbl, tc.tenant)
			mustNoErr(t, err, "CountRows")
			if got != tc.want {
				t.Errorf("CountRows(%s) = %d, want %d", tc.tenant, got, tc.want)
			}
		}
	})
}

func testScanRows(t *testing.T, h Harness) {
	s := h.Open(t)
	t1, _ := mustSeedApp(t, h, s)
	tbl := AppTable(appTableName)

	t.Run("VisitsAll", func(t *testing.T) {
		var got []store.Row
		err := s.ScanRows(t.Context(), tbl, AppColumns, "t1", func(r store.Row) error {
			got = append(got, slices.Clone(r)) // the backend may reuse r
			return nil
		})
		mustNoErr(t, err, "ScanRows")
		mustSameRows(t, byKey(got), normalised(h, byKey(t1)))
	})

	t.Run("StopsOnError", func(t *testing.T) {
		errStop := errors.New("stop here")
		calls := 0
		err := s.ScanRows(t.Context(), tbl, AppColumns, "t1", func(store.Row) error {
			calls++
			if calls == 3 {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("ScanRows error = %v, want the callback's error", err)
		}
		if calls != 3 {
			t.Fatalf("callback called %d times, want 3", calls)
		}
	})

	t.Run("NoRows", func(t *testing.T) {
		calls := 0
		err := s.ScanRows(t.Context(), tbl, AppColumns, "t3", func(store.Row) error { calls++; return nil })
		mustNoErr(t, err, "ScanRows")
		if calls != 0 {
			t.Fatalf("callback called %d times for a tenant without rows", calls)
		}
	})
}

func testWriteRows(t *testing.T, h Harness) {
	s := h.Open(t)
	h.CreateAppTable(t, s, appTableName)
	tbl := AppTable(appTableName)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	rows := []store.Row{
		{"w", int64(1), "nulls", nil, nil, nil, nil, nil},
		{"w", int64(2), "empty", "", 0.0, []byte{}, false, base},
		{"w", int64(3), "unicode ✓ 日本 𝄞", "tab\tnewline\nquote'\"back\\slash ünïcode 𝄞", -0.1, all, true, base.Add(-24 * 365 * time.Hour)},
		{"w", int64(math.MaxInt64), "max", "x", math.MaxFloat64, []byte("x"), true, time.Date(2199, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{"w", int64(math.MinInt64), "min", "y", -math.SmallestNonzeroFloat64, []byte{0}, false, time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC)},
		{"w", int64(1 << 53), "2^53", "z", 1e-300, []byte{0xff}, nil, time.Date(1969, 7, 20, 20, 17, 40, 0, time.FixedZone("PDT", -7*3600))},
	}

	t.Run("RoundTrip", func(t *testing.T) {
		mustNoErr(t, WriteRows(t.Context(), s, tbl, AppColumns, rows), "WriteRows")
		mustSameRows(t, mustReadAll(t, s, tbl, AppColumns, "w", 2), normalised(h, byKey(rows)))
	})

	t.Run("Empty", func(t *testing.T) {
		mustNoErr(t, WriteRows(t.Context(), s, tbl, AppColumns, nil), "WriteRows of no rows")
	})

	t.Run("DuplicateIsConflictAndAtomic", func(t *testing.T) {
		before, err := s.CountRows(t.Context(), tbl, "w")
		mustNoErr(t, err, "CountRows")
		batch := []store.Row{
			{"w", int64(100), "new", "new", nil, nil, nil, nil},
			{"w", int64(1), "nulls", "dup", nil, nil, nil, nil},
		}
		mustCode(t, WriteRows(t.Context(), s, tbl, AppColumns, batch), realmhook.ECONFLICT)
		after, err := s.CountRows(t.Context(), tbl, "w")
		mustNoErr(t, err, "CountRows")
		if after != before {
			t.Fatalf("a failed WriteRows changed the row count from %d to %d", before, after)
		}
	})

	t.Run("LargeBatch", func(t *testing.T) {
		var big []store.Row
		for i := range 5000 {
			big = append(big, store.Row{"big", int64(i), "s", fmt.Sprintf("row %d", i), float64(i), []byte{byte(i)}, i%3 == 0, base.Add(time.Duration(i) * time.Second)})
		}
		mustNoErr(t, WriteRows(t.Context(), s, tbl, AppColumns, big), "WriteRows")
		got, err := s.CountRows(t.Context(), tbl, "big")
		mustNoErr(t, err, "CountRows")
		if got != int64(len(big)) {
			t.Fatalf("CountRows = %d, want %d", got, len(big))
		}
		mustSameRows(t, mustReadAll(t, s, tbl, AppColumns, "big", 1000), normalised(h, big))
	})
}

func testDeleteRows(t *testing.T, h Harness) {
	s := h.Open(t)
	t1, t2 := mustSeedApp(t, h, s)
	tbl := AppTable(appTableName)
	sorted := normalised(h, byKey(t1))
	const keep = 10

	n, err := s.DeleteRows(t.Context(), tbl, "t1", store.Row{sorted[keep-1][1], sorted[keep-1][2]})
	mustNoErr(t, err, "DeleteRows after cursor")
	if n != int64(len(t1)-keep) {
		t.Fatalf("DeleteRows after cursor = %d, want %d", n, len(t1)-keep)
	}
	mustSameRows(t, mustReadAll(t, s, tbl, AppColumns, "t1", 100), sorted[:keep])
	mustSameRows(t, mustReadAll(t, s, tbl, AppColumns, "t2", 100), normalised(h, byKey(t2)))

	n, err = s.DeleteRows(t.Context(), tbl, "t1", nil)
	mustNoErr(t, err, "DeleteRows all")
	if n != keep {
		t.Fatalf("DeleteRows all = %d, want %d", n, keep)
	}
	if c, err := s.CountRows(t.Context(), tbl, "t1"); err != nil || c != 0 {
		t.Fatalf("CountRows(t1) after delete = %d, %v; want 0", c, err)
	}
	if c, err := s.CountRows(t.Context(), tbl, "t2"); err != nil || c != int64(len(t2)) {
		t.Fatalf("CountRows(t2) = %d, %v; want %d", c, err, len(t2))
	}
	n, err = s.DeleteRows(t.Context(), tbl, "t1", nil)
	mustNoErr(t, err, "DeleteRows of nothing")
	if n != 0 {
		t.Fatalf("DeleteRows of nothing = %d", n)
	}
}

func testBadInput(t *testing.T, h Harness) {
	s := h.Open(t)
	h.CreateAppTable(t, s, appTableName)
	good := AppTable(appTableName)
	row := store.Row{"t", int64(1), "s", nil, nil, nil, nil, nil}

	for _, tc := range []struct {
		name string
		call func() error
		code string
	}{
		{"ColumnsQuoteInName", func() error { _, err := s.Columns(t.Context(), `app"items`); return err }, realmhook.EINVALID},
		{"ReadQuoteInTable", func() error {
			_, err := s.ReadRows(t.Context(), store.Table{Name: `x"; DROP TABLE app_items; --`, TenantColumn: "tenant", Key: []string{"id"}}, []string{"id"}, "t", nil, 10)
			return err
		}, realmhook.EINVALID},
		{"ReadQuoteInColumn", func() error {
			_, err := s.ReadRows(t.Context(), good, []string{"id", "sub", `bo"dy`}, "t", nil, 10)
			return err
		}, realmhook.EINVALID},
		{"ReadNULInColumn", func() error {
			_, err := s.ReadRows(t.Context(), good, []string{"id", "sub", "bo\x00dy"}, "t", nil, 10)
			return err
		}, realmhook.EINVALID},
		{"ReadKeyNotAmongColumns", func() error {
			_, err := s.ReadRows(t.Context(), good, []string{"id", "body"}, "t", nil, 10)
			return err
		}, realmhook.EINVALID},
		{"ReadCursorWrongLength", func() error {
			_, err := s.ReadRows(t.Context(), good, AppColumns, "t", store.Row{int64(1)}, 10)
			return err
		}, realmhook.EINVALID},
		{"ReadMissingTable", func() error {
			_, err := s.ReadRows(t.Context(), AppTable("no_such_table"), AppColumns, "t", nil, 10)
			return err
		}, realmhook.ENOTFOUND},
		{"WriteWrongRowLength", func() error {
			return WriteRows(t.Context(), s, good, AppColumns, []store.Row{row[:3]})
		}, realmhook.EINVALID},
		{"DeleteQuoteInTenantColumn", func() error {
			_, err := s.DeleteRows(t.Context(), store.Table{Name: appTableName, TenantColumn: `ten"ant`, Key: []string{"id", "sub"}}, "t", nil)
			return err
		}, realmhook.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustCode(t, tc.call(), tc.code)
		})
	}
	// None of it may have touched the table.
	cols, err := s.Columns(t.Context(), appTableName)
	mustNoErr(t, err, "Columns after bad input")
	if !slices.Equal(cols, AppColumns) {
		t.Fatalf("Columns after bad input = %v", cols)
	}
}

func testPropertiesTable(t *testing.T, h Harness) {
	src, dst := h.Open(t), h.Open(t)
	tbl := store.PropertiesTable
	mustPutTenant(t, src, "ck", realmhook.TenantActive)
	mustPutTenant(t, src, "other", realmhook.TenantActive)
	values := map[string]string{
		"a":     `{"x": 1}`,
		"b%":    `[1, 2,   3]`,
		"é":     `"ünïcode"`,
		"z/9":   `null`,
		"empty": `""`,
	}
	for k, v := range values {
		mustPutProperty(t, src, "ck", k, v)
	}
	mustPutProperty(t, src, "other", "a", `"not ck"`)
	// The target holds the tenant as the migration engine leaves it before copying.
	mustPutTenant(t, dst, "ck", realmhook.TenantIncoming)

	cols, err := src.Columns(t.Context(), tbl.Name)
	mustNoErr(t, err, "Columns")
	for _, c := range append([]string{tbl.TenantColumn}, tbl.Key...) {
		if !slices.Contains(cols, c) {
			t.Fatalf("Columns(%s) = %v, missing %s", tbl.Name, cols, c)
		}
	}

	rows := mustReadAll(t, src, tbl, cols, "ck", 2)
	if len(rows) != len(values) {
		t.Fatalf("ReadRows(%s) = %d rows, want %d", tbl.Name, len(rows), len(values))
	}
	keyIdx := slices.Index(cols, "key")
	for i, r := range rows {
		if i > 0 && r[keyIdx].(string) <= rows[i-1][keyIdx].(string) {
			t.Fatalf("rows out of key order: %q after %q", r[keyIdx], rows[i-1][keyIdx])
		}
	}
	if n, err := src.CountRows(t.Context(), tbl, "ck"); err != nil || n != int64(len(values)) {
		t.Fatalf("CountRows = %d, %v; want %d", n, err, len(values))
	}

	// Copy to another database the way the migration engine does.
	mustNoErr(t, WriteRows(t.Context(), dst, tbl, cols, rows), "WriteRows")
	for k, v := range values {
		mustGetProperty(t, dst, "ck", k, v)
	}
	_, err = dst.GetProperty(t.Context(), "other", "a")
	mustCode(t, err, realmhook.ENOTFOUND)
	mustSameRows(t, mustReadAll(t, dst, tbl, cols, "ck", 100), rows)

	n, err := dst.DeleteRows(t.Context(), tbl, "ck", nil)
	mustNoErr(t, err, "DeleteRows")
	if n != int64(len(values)) {
		t.Fatalf("DeleteRows = %d, want %d", n, len(values))
	}
	_, err = dst.GetProperty(t.Context(), "ck", "a")
	mustCode(t, err, realmhook.ENOTFOUND)
	mustGetProperty(t, src, "ck", "a", values["a"])
}

// batches hands rows out through a CopyRows next function, per rows at a time,
// and counts the calls.
type batches struct {
	rows  []store.Row
	per   int
	calls int
}

func (b *batches) next() ([]store.Row, error) {
	b.calls++
	n := min(b.per, len(b.rows))
	out := b.rows[:n]
	b.rows = b.rows[n:]
	return out, nil
}

func testCopyRows(t *testing.T, h Harness) {
	s := h.Open(t)
	h.CreateAppTable(t, s, appTableName)
	tbl := AppTable(appTableName)
	mustCount := func(t *testing.T, tenant string, want int64) {
		t.Helper()
		got, err := s.CountRows(t.Context(), tbl, tenant)
		mustNoErr(t, err, "CountRows")
		if got != want {
			t.Fatalf("CountRows(%s) = %d, want %d", tenant, got, want)
		}
	}
	many := func(tenant string, n int) []store.Row {
		var rows []store.Row
		for i := range n {
			rows = append(rows, store.Row{tenant, int64(i), "s", fmt.Sprintf("row %d", i), float64(i) / 2,
				[]byte{byte(i), byte(i >> 8)}, i%3 == 0, base.Add(time.Duration(i) * time.Millisecond)})
		}
		return rows
	}

	t.Run("RoundTrip", func(t *testing.T) {
		// Batches of odd sizes: a backend's statement chunking must not
		// lose or repeat the rows between them.
		for _, per := range []int{1, 7, 1000} {
			tenant := fmt.Sprintf("rt%d", per)
			rows := append(seedRows(tenant), many(tenant, 1300)...)
			src := &batches{rows: slices.Clone(rows), per: per}
			n, err := s.CopyRows(t.Context(), tbl, AppColumns, src.next)
			mustNoErr(t, err, "CopyRows")
			if n != int64(len(rows)) {
				t.Fatalf("batches of %d: CopyRows = %d rows, want %d", per, n, len(rows))
			}
			if want := (len(rows)+per-1)/per + 1; src.calls != want {
				t.Fatalf("batches of %d: next called %d times, want %d (once more for the end)", per, src.calls, want)
			}
			mustSameRows(t, mustReadAll(t, s, tbl, AppColumns, tenant, 500), normalised(h, byKey(rows)))
		}
	})

	t.Run("EmptyStream", func(t *testing.T) {
		calls := 0
		n, err := s.CopyRows(t.Context(), tbl, AppColumns, func() ([]store.Row, error) { calls++; return nil, nil })
		mustNoErr(t, err, "CopyRows of no rows")
		if n != 0 || calls != 1 {
			t.Fatalf("CopyRows of no rows = %d rows after %d calls of next, want 0 after 1", n, calls)
		}
	})

	t.Run("NextErrorWritesNothing", func(t *testing.T) {
		errStop := errors.New("source failed")
		rows := many("nexterr", 2500)
		sent := 0
		n, err := s.CopyRows(t.Context(), tbl, AppColumns, func() ([]store.Row, error) {
			if sent == 2000 {
				return nil, errStop
			}
			b := rows[sent : sent+1000]
			sent += 1000
			return b, nil
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("CopyRows = %d, %v; want next's error", n, err)
		}
		mustCount(t, "nexterr", 0)
	})

	t.Run("DuplicateIsConflictAndWritesNothing", func(t *testing.T) {
		mustNoErr(t, WriteRows(t.Context(), s, tbl, AppColumns, many("dup", 1)), "WriteRows")
		// The duplicate (id 0) comes in the second batch, after rows that
		// the backend has already sent.
		rows := many("dup", 3000)[1:]
		rows = append(rows, many("dup", 1)...)
		src := &batches{rows: rows, per: 1500}
		_, err := s.CopyRows(t.Context(), tbl, AppColumns, src.next)
		mustCode(t, err, realmhook.ECONFLICT)
		mustCount(t, "dup", 1)
	})

	t.Run("BadRowWritesNothing", func(t *testing.T) {
		rows := many("bad", 1200)
		rows[1100] = rows[1100][:3]
		src := &batches{rows: rows, per: 500}
		_, err := s.CopyRows(t.Context(), tbl, AppColumns, src.next)
		mustCode(t, err, realmhook.EINVALID)
		mustCount(t, "bad", 0)
	})
}
