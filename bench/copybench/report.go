package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Goals the copy is measured against (issue 15).
const (
	goalVerifyShare = 0.4 // verification time ÷ copy time, at most
	goalPeakGrowth  = 1.2 // peak RSS at the largest size ÷ at the smallest, at most: flat
)

// goalRatio is realmhook's rows/s ÷ the baseline's, at least, by backend: on
// PostgreSQL the copy may read tables (or key ranges) in parallel under one
// snapshot and so beat a single COPY pipe; on SQLite the sqlite3 shell copies
// inside one process with no driver at all.
func goalRatio(backend string) float64 {
	switch backend {
	case "postgres":
		return 1.2
	case regionalLabel:
		// Issue 14: through two processes and the transfer API.
		return 0.7
	}
	return 0.6
}

// regionalLabel names the PostgreSQL copy through two processes (-transfer).
const regionalLabel = "postgres-regional"

// result is one tenant size on one backend.
type result struct {
	Backend string
	Rows    int
	copyResult
	PeakRSS int64 // bytes, of the realmhook child
	// Baseline is the database's own bulk copy of the same rows (0: skipped).
	Baseline        time.Duration
	BaselinePeakRSS int64
}

func (r result) rowsPerSec() float64 { return perSec(r.Rows, r.Copy) }

func (r result) baselineRowsPerSec() float64 { return perSec(r.Rows, r.Baseline) }

// ratio is realmhook's copy speed as a share of the baseline's; 0 without one.
func (r result) ratio() float64 {
	if r.Baseline <= 0 || r.Copy <= 0 {
		return 0
	}
	return r.Baseline.Seconds() / r.Copy.Seconds()
}

// wholeRatio is the same with realmhook's verification counted in: the
// baseline verifies nothing, and a migration is not done until it has.
func (r result) wholeRatio() float64 {
	if r.Baseline <= 0 || r.Copy <= 0 {
		return 0
	}
	return r.Baseline.Seconds() / (r.Copy + r.Verify).Seconds()
}

// goalRatioOf is the ratio a backend's goal is stated on: PostgreSQL's with
// checkpoints and verification included (issue 15), SQLite's on the copy.
func (r result) goalRatioOf() (float64, string) {
	if r.Backend == "postgres" || r.Backend == regionalLabel {
		return r.wholeRatio(), "ratio with verification"
	}
	return r.ratio(), "ratio"
}

func (r result) verifyShare() float64 {
	if r.Copy <= 0 {
		return 0
	}
	return r.Verify.Seconds() / r.Copy.Seconds()
}

func perSec(rows int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(rows) / d.Seconds()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// printReport writes the results table, the peak-memory growth between the
// smallest and the largest size, and each goal's verdict.
func printReport(w io.Writer, rs []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "backend\trows\tcopy s\trows/s\tverify s\tverify/copy\tpeak RSS MiB\tbaseline s\tbaseline rows/s\tbaseline RSS MiB\tratio\tratio with verify")
	for _, r := range rs {
		base, baseRate, baseRSS, ratio, whole := "-", "-", "-", "-", "-"
		if r.Baseline > 0 {
			base = fmt.Sprintf("%.2f", r.Baseline.Seconds())
			baseRate = fmt.Sprintf("%.0f", r.baselineRowsPerSec())
			baseRSS = fmt.Sprintf("%.1f", mib(r.BaselinePeakRSS))
			ratio = fmt.Sprintf("%.2f", r.ratio())
			whole = fmt.Sprintf("%.2f", r.wholeRatio())
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%.2f\t%.2f\t%.1f\t%s\t%s\t%s\t%s\t%s\n",
			r.Backend, r.Rows, r.Copy.Seconds(), r.rowsPerSec(), r.Verify.Seconds(), r.verifyShare(),
			mib(r.PeakRSS), base, baseRate, baseRSS, ratio, whole)
	}
	tw.Flush()
	for _, line := range verdicts(rs) {
		fmt.Fprintln(w, line)
	}
}

// verdicts states each goal against the results: the ratio and the
// verification share at every size, the peak RSS growth from the smallest to
// the largest size.
func verdicts(rs []result) []string {
	var lines []string
	if len(rs) >= 2 {
		small, large := rs[0], rs[0]
		for _, r := range rs {
			if r.Rows < small.Rows {
				small = r
			}
			if r.Rows > large.Rows {
				large = r
			}
		}
		if small.PeakRSS > 0 && small.Rows != large.Rows {
			growth := float64(large.PeakRSS) / float64(small.PeakRSS)
			lines = append(lines, fmt.Sprintf("peak RSS %s/%s: %.2f (goal ≤ %.1f: %s)",
				short(large.Rows), short(small.Rows), growth, goalPeakGrowth, verdict(growth <= goalPeakGrowth)))
		}
	}
	for _, r := range rs {
		v := fmt.Sprintf("%s %s: verify/copy %.2f (goal ≤ %.2f: %s)", r.Backend, short(r.Rows),
			r.verifyShare(), goalVerifyShare, verdict(r.verifyShare() <= goalVerifyShare))
		if r.Baseline > 0 {
			goal := goalRatio(r.Backend)
			got, name := r.goalRatioOf()
			v += fmt.Sprintf("; %s %.2f (goal ≥ %.2f: %s)", name, got, goal, verdict(got >= goal))
		}
		lines = append(lines, v)
	}
	return lines
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// short writes a row count the way people say it: 100k, 1M.
func short(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
