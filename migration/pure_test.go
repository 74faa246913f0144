package migration

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

func TestCheckTransition(t *testing.T) {
	// The allowed moves, written out independently of the transitions table.
	allowed := map[string]bool{
		"scheduled>copying": true, "scheduled>ready-to-commit": true, "scheduled>failed": true, "scheduled>rolling-back": true,
		"copying>copying": true, "copying>verifying": true, "copying>failed": true, "copying>rolling-back": true,
		"verifying>ready-to-commit": true, "verifying>failed": true, "verifying>rolling-back": true,
		"ready-to-commit>committing": true, "ready-to-commit>rolling-back": true,
		"failed>rolling-back":      true,
		"committing>committed":     true,
		"committing>rolling-back":  true,
		"rolling-back>rolled-back": true,
	}
	if len(allStates) != 9 {
		t.Fatalf("allStates has %d states, want 9", len(allStates))
	}
	for _, from := range allStates {
		for _, to := range allStates {
			t.Run(string(from)+">"+string(to), func(t *testing.T) {
				err := checkTransition(from, to)
				if want := allowed[string(from)+">"+string(to)]; want && err != nil {
					t.Fatalf("checkTransition = %v, want allowed", err)
				} else if !want && realmhook.ErrorCode(err) != realmhook.ECONFLICT {
					t.Fatalf("checkTransition = %v, want ECONFLICT", err)
				}
			})
		}
	}
	t.Run("UnknownState", func(t *testing.T) {
		if err := checkTransition("paused", realmhook.MigrationCopying); realmhook.ErrorCode(err) != realmhook.EINVALID {
			t.Fatalf("checkTransition from unknown = %v, want EINVALID", err)
		}
	})
}

func mustChecksum(t *testing.T, rows ...store.Row) Checksum {
	t.Helper()
	var c Checksum
	for _, r := range rows {
		if err := c.Add(r); err != nil {
			t.Fatalf("Add(%v): %v", r, err)
		}
	}
	return c
}

func TestChecksum(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC)
	a := store.Row{"ck", int64(1), "alpha", []byte{0, 1}, 1.5, true, at, nil}
	b := store.Row{"ck", int64(2), "beta", []byte{}, -0.25, false, at.Add(time.Hour), nil}
	c := store.Row{"ck", int64(3), "", nil, 0.0, true, time.Time{}, "x"}

	t.Run("OrderIndependent", func(t *testing.T) {
		if x, y := mustChecksum(t, a, b, c), mustChecksum(t, c, a, b); x != y {
			t.Fatalf("checksum depends on order: %s vs %s", x, y)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		var zero Checksum
		if got := mustChecksum(t); got != zero || got.Rows != 0 {
			t.Fatalf("empty checksum = %s", got)
		}
	})
	t.Run("CountsDuplicates", func(t *testing.T) {
		x, y := mustChecksum(t, a, b), mustChecksum(t, a, b, b)
		if x == y || y.Rows != 3 {
			t.Fatalf("a duplicate row is invisible: %s vs %s", x, y)
		}
	})
	t.Run("MergeOfParts", func(t *testing.T) {
		whole := mustChecksum(t, a, b, c)
		for _, split := range [][2][]store.Row{{{a}, {b, c}}, {{a, b}, {c}}, {nil, {a, b, c}}} {
			x, y := mustChecksum(t, split[0]...), mustChecksum(t, split[1]...)
			x.merge(y)
			if x != whole {
				t.Fatalf("merge of %d+%d rows = %s, want %s", len(split[0]), len(split[1]), x, whole)
			}
		}
		// The low half's carry reaches the high half.
		x, y := Checksum{Rows: 1, lo: math.MaxUint64}, Checksum{Rows: 1, lo: 2}
		x.merge(y)
		if want := (Checksum{Rows: 2, hi: 1, lo: 1}); x != want {
			t.Fatalf("merge with carry = %s, want %s", x, want)
		}
	})
	t.Run("ZoneIndependent", func(t *testing.T) {
		local := store.Row{at.In(time.FixedZone("X", 3600))}
		if x, y := mustChecksum(t, store.Row{at}), mustChecksum(t, local); x != y {
			t.Fatalf("same instant in another zone hashes differently: %s vs %s", x, y)
		}
	})
	// Rows that differ in one value, or only in the type of a value, differ.
	differ := []struct {
		name string
		x, y store.Row
	}{
		{"Value", store.Row{"ck", int64(1), "a"}, store.Row{"ck", int64(1), "b"}},
		{"IntVsString", store.Row{int64(1)}, store.Row{"1"}},
		{"IntVsFloat", store.Row{int64(1)}, store.Row{1.0}},
		{"StringVsBytes", store.Row{"ab"}, store.Row{[]byte("ab")}},
		{"NilVsEmpty", store.Row{nil}, store.Row{""}},
		{"BoolVsInt", store.Row{true}, store.Row{int64(1)}},
		{"Boundary", store.Row{"ab", "c"}, store.Row{"a", "bc"}},
		{"Arity", store.Row{"a"}, store.Row{"a", nil}},
		{"Nanos", store.Row{at}, store.Row{at.Add(time.Microsecond)}},
	}
	for _, tc := range differ {
		t.Run("Differ"+tc.name, func(t *testing.T) {
			if x, y := mustChecksum(t, tc.x), mustChecksum(t, tc.y); x == y {
				t.Fatalf("%v and %v hash alike: %s", tc.x, tc.y, x)
			}
		})
	}
	t.Run("Carry", func(t *testing.T) {
		// Adding the same rows in two groupings must agree even when the low
		// half overflows; 200 distinct rows make a carry all but certain.
		var rows []store.Row
		for i := range 200 {
			rows = append(rows, store.Row{int64(i)})
		}
		x := mustChecksum(t, rows...)
		y := mustChecksum(t, append(rows[100:], rows[:100]...)...)
		if x != y || x.Rows != 200 {
			t.Fatalf("checksums differ: %s vs %s", x, y)
		}
	})
	t.Run("UnsupportedType", func(t *testing.T) {
		var c Checksum
		err := c.Add(store.Row{"ok", struct{}{}})
		if err == nil || !strings.Contains(err.Error(), "column 1") {
			t.Fatalf("Add(struct) = %v, want an error naming column 1", err)
		}
		if c.Rows != 0 {
			t.Fatalf("a failed Add counted a row")
		}
	})
}

func TestCheckpointEncoding(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC)
	cases := []struct {
		name string
		cp   checkpoint
	}{
		{"Start", checkpoint{}},
		{"TableEnd", checkpoint{Table: 3}},
		{"IntKey", checkpoint{Table: 1, After: store.Row{int64(1) << 60}}},
		{"MixedKey", checkpoint{Table: 2, After: store.Row{"x", int64(-7), 2.5, []byte{0xff, 0}, true, at, nil, ""}}},
		{"SummedStart", checkpoint{Summed: true}},
		{"Sums", checkpoint{Table: 1, After: store.Row{"k"}, Summed: true,
			Sums: []Checksum{mustChecksum(t, store.Row{"a"}, store.Row{int64(2)}), {Rows: 3, hi: math.MaxUint64, lo: 1}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := encodeCheckpoint(tc.cp)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeCheckpoint(enc)
			if err != nil {
				t.Fatalf("decode %s: %v", enc, err)
			}
			if got.Table != tc.cp.Table || len(got.After) != len(tc.cp.After) || got.Summed != tc.cp.Summed ||
				fmt.Sprint(got.Sums) != fmt.Sprint(tc.cp.Sums) {
				t.Fatalf("decode(%s) = %+v, want %+v", enc, got, tc.cp)
			}
			// Equal checksums mean equal values of equal types.
			if x, y := mustChecksum(t, got.After), mustChecksum(t, tc.cp.After); x != y {
				t.Fatalf("decode(%s) = %#v, want %#v", enc, got.After, tc.cp.After)
			}
		})
	}
	t.Run("Empty", func(t *testing.T) {
		if cp, err := decodeCheckpoint(""); cp != nil || err != nil {
			t.Fatalf(`decodeCheckpoint("") = %v, %v; want nil, nil`, cp, err)
		}
	})
	for _, bad := range []string{"{", `{"table":-1}`, `{"table":0,"sums":[{"rows":1,"sum":"xyz"}]}`, `{"table":0,"sums":[{"rows":-1,"sum":"00000000000000000000000000000000"}]}`, `{"table":0,"after":[{"t":"?"}]}`, `{"table":0,"after":[{"t":"i","v":"x"}]}`} {
		t.Run("Bad"+bad, func(t *testing.T) {
			if _, err := decodeCheckpoint(bad); err == nil {
				t.Fatalf("decodeCheckpoint(%s) accepted", bad)
			}
		})
	}
}

// TestResponseCode: every errorResponseCode is derived in ResponseCode, from
// the reason an error wraps and its domain code.
func TestResponseCode(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"Nil", nil, ""},
		{"Bug", errors.New("boom"), realmhook.ResponseOther},
		{"Internal", realmhook.Errorf(realmhook.EINTERNAL, "bug"), realmhook.ResponseOther},
		{"DomainWithoutReason", realmhook.Errorf(realmhook.EINVALID, "bad"), realmhook.ResponseOther},
		{"NotScheduled", notScheduled("ck", "m1"), realmhook.ResponseNotScheduled},
		{"RealmNotSupported", refusal(realmhook.EINVALID, errRealmNotSupported, "no"), realmhook.ResponseRealmNotSupported},
		{"SwitchedOff", refusal(realmhook.EINVALID, errSwitchedOff, "off"), realmhook.ResponseNotSupported},
		{"Wrapped", fmt.Errorf("ctx: %w", refusal(realmhook.ECONFLICT, errTooManyConcurrent, "busy")), realmhook.ResponseTooManyConcurrent},
		// The host retries an answer without a code: a database that did not
		// answer gets none, nor does a call refused before the protocol.
		{"Unavailable", fmt.Errorf("get: %w", realmhook.Unavailable(errors.New("connection refused"))), ""},
		{"DeadlineExceeded", fmt.Errorf("get: %w", context.DeadlineExceeded), ""},
		{"Unauthorized", realmhook.Errorf(realmhook.EUNAUTHORIZED, "bad token"), ""},
		{"TooLarge", realmhook.Errorf(realmhook.ETOOLARGE, "big"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ResponseCode(tc.err); got != tc.want {
				t.Fatalf("ResponseCode(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

// TestCheckScheduleRequest: the engine checks a hook body's fields with the
// one realm-key rule config uses, and the one migrationId limit.
func TestCheckScheduleRequest(t *testing.T) {
	tn := &realmhook.Tenant{ClientKey: "ck"}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ok := Request{MigrationID: "m1", Location: "FR", StartTime: start, EndTime: start.Add(time.Hour)}
	with := func(change func(*Request)) Request { r := ok; change(&r); return r }
	cases := []struct {
		name string
		req  Request
		want string // a word of the message; "" for accepted
	}{
		{"OK", ok, ""},
		{"Global", with(func(r *Request) { r.Location = realmhook.GlobalRealm }), ""},
		{"IDAtLimit", with(func(r *Request) { r.MigrationID = strings.Repeat("i", MaxIDBytes) }), ""},
		{"NoID", with(func(r *Request) { r.MigrationID = "" }), "migrationId is required"},
		{"IDTooLong", with(func(r *Request) { r.MigrationID = strings.Repeat("i", MaxIDBytes+1) }), "longer than 255"},
		{"NoLocation", with(func(r *Request) { r.Location = "" }), "location is required"},
		{"LowerCaseLocation", with(func(r *Request) { r.Location = "eu" }), "not a realm key"},
		{"LocationWithDash", with(func(r *Request) { r.Location = "us-east" }), "not a realm key"},
		{"NoStart", with(func(r *Request) { r.StartTime = time.Time{} }), "startTime is required"},
		{"NoEnd", with(func(r *Request) { r.EndTime = time.Time{} }), "endTime is required"},
		{"EndBeforeStart", with(func(r *Request) { r.EndTime = start.Add(-time.Hour) }), "not after startTime"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkScheduleRequest(tn, tc.req)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (realmhook.ErrorCode(err) != realmhook.EINVALID || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want EINVALID saying %q", err, tc.want)
			}
		})
	}
}

// TestNew_ZeroConfigTakesDefaults: a Go caller that sets nothing gets the
// Default* constants, the same ones package config applies.
func TestNew_ZeroConfigTakesDefaults(t *testing.T) {
	s := New(Config{}, nil, nil, Options{})
	got := [...]any{s.cfg.BatchRows, s.cfg.CheckpointRows, s.cfg.PurgeAfter, s.cfg.LeaseTTL, s.cfg.SweepInterval}
	want := [...]any{DefaultBatchRows, DefaultCheckpointRows, DefaultPurgeAfter, DefaultLeaseTTL, DefaultSweepInterval}
	if got != want {
		t.Fatalf("New(Config{}) took %v, want %v", got, want)
	}
}
