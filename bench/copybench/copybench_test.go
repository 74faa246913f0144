package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
)

func TestRunCopy_SQLite(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name, shape       string
		rows, batch, ckpt int
	}{
		{"OneBatchPerTable", "notes", 300, 1000, 5000},
		{"ManyBatchesAndCheckpoints", "notes", 2500, 64, 200},
		{"SpreadOverThreeTables", "spread", 2500, 64, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shape := shapes[tc.shape]
			files, err := prepareSQLite(ctx, filepath.Join(t.TempDir(), "data"), shape, tc.rows, log)
			if err != nil {
				t.Fatal(err)
			}
			if n := mustCount(t, files.Source, shape, otherTenant); n != otherRows {
				t.Fatalf("source holds %d rows of the other tenant, want %d", n, otherRows)
			}
			res, err := runCopy(ctx, copySpec{Backend: "sqlite", Shape: tc.shape, Source: files.Source, Target: files.Target,
				Rows: tc.rows, Batch: tc.batch, Checkpoint: tc.ckpt}, log)
			if err != nil {
				t.Fatal(err)
			}
			if res.Copied != int64(tc.rows) || res.OtherCopied != 0 {
				t.Errorf("copied %d rows and %d of the other tenant, want %d and 0", res.Copied, res.OtherCopied, tc.rows)
			}
			if n := mustCount(t, files.Target, shape, benchTenant); n != int64(tc.rows) {
				t.Errorf("target file holds %d rows of the tenant, want %d", n, tc.rows)
			}
			if res.Copy <= 0 || res.Verify <= 0 || res.Wall < res.Copy+res.Verify-time.Millisecond {
				t.Errorf("phases: copy %v, verify %v, wall %v", res.Copy, res.Verify, res.Wall)
			}
		})
	}
}

func mustCount(t *testing.T, path string, shape []benchTable, tenant string) int64 {
	t.Helper()
	n, err := countSQLite(context.Background(), path, shape, tenant)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPhases(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(1700000000, 0).Add(time.Duration(s) * time.Second) }
	ev := func(s int, from, to realmhook.MigrationState) realmhook.MigrationEvent {
		return realmhook.MigrationEvent{At: at(s), From: from, To: to}
	}
	full := []realmhook.MigrationEvent{
		ev(0, "", realmhook.MigrationScheduled),
		ev(1, realmhook.MigrationScheduled, realmhook.MigrationCopying),
		ev(2, realmhook.MigrationCopying, realmhook.MigrationCopying),
		ev(11, realmhook.MigrationCopying, realmhook.MigrationVerifying),
		ev(14, realmhook.MigrationVerifying, realmhook.MigrationReadyToCommit),
	}
	for _, tc := range []struct {
		name         string
		events       []realmhook.MigrationEvent
		copy, verify time.Duration
		wantErr      bool
	}{
		{"OK", full, 10 * time.Second, 3 * time.Second, false},
		{"ErrNotVerified", full[:4], 0, 0, true},
		{"ErrNoEvents", nil, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, v, err := phases(tc.events)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if c != tc.copy || v != tc.verify {
				t.Errorf("copy %v verify %v, want %v and %v", c, v, tc.copy, tc.verify)
			}
		})
	}
}

func TestMain_ParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		wantRows []int
		wantErr  string
	}{
		{"Defaults", nil, []int{100000, 1000000}, ""},
		{"Rows", []string{"-rows", "2000, 30000"}, []int{2000, 30000}, ""},
		{"ErrRowsNotNumber", []string{"-rows", "many"}, nil, `"many"`},
		{"ErrRowsTooFew", []string{"-rows", "3"}, nil, `"3"`},
		{"ErrBackend", []string{"-backend", "mysql"}, nil, "mysql"},
		{"ErrBatch", []string{"-batch", "0"}, nil, "-batch"},
		{"ErrArgument", []string{"extra"}, nil, "extra"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMain()
			m.Stderr = io.Discard
			err := m.ParseFlags(tc.args)
			if tc.wantErr != "" {
				if realmhook.ErrorCode(err) != realmhook.EINVALID || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want EINVALID naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Rows) != len(tc.wantRows) {
				t.Fatalf("rows %v, want %v", m.Rows, tc.wantRows)
			}
			for i := range m.Rows {
				if m.Rows[i] != tc.wantRows[i] {
					t.Fatalf("rows %v, want %v", m.Rows, tc.wantRows)
				}
			}
		})
	}
}

func TestPrintReport(t *testing.T) {
	rs := []result{
		{Backend: "sqlite", Rows: 100000, copyResult: copyResult{Copy: 2 * time.Second, Verify: 500 * time.Millisecond},
			PeakRSS: 40 << 20, Baseline: 500 * time.Millisecond, BaselinePeakRSS: 10 << 20},
		{Backend: "sqlite", Rows: 1000000, copyResult: copyResult{Copy: 20 * time.Second, Verify: 15 * time.Second},
			PeakRSS: 80 << 20, Baseline: 14 * time.Second, BaselinePeakRSS: 10 << 20},
	}
	var buf bytes.Buffer
	printReport(&buf, rs)
	// PostgreSQL's goal is beating the psql pipe: 0.85 misses it.
	printReport(&buf, []result{{Backend: "postgres", Rows: 1000000,
		copyResult: copyResult{Copy: 20 * time.Second, Verify: 5 * time.Second}, Baseline: 17 * time.Second}})
	out := buf.String()
	for _, want := range []string{
		"postgres 1M: verify/copy 0.25 (goal ≤ 0.40: met); ratio with verification 0.68 (goal ≥ 1.20: MISSED)",
		"sqlite   100000   2.00    50000",
		"peak RSS 1M/100k: 2.00 (goal ≤ 1.2: MISSED)",
		"sqlite 100k: verify/copy 0.25 (goal ≤ 0.40: met); ratio 0.25 (goal ≥ 0.60: MISSED)",
		"sqlite 1M: verify/copy 0.75 (goal ≤ 0.40: MISSED); ratio 0.70 (goal ≥ 0.60: met)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
