package main

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Forge's default migration window, and the shorter one partners ask about.
var windows = []struct {
	name string
	d    time.Duration
}{{"1.5 h (Forge's default)", 90 * time.Minute}, {"30 min", 30 * time.Minute}}

// windowMargin is the safety factor the table's advice puts on the measured
// rate: a production database under its own load copies slower than an idle
// one.
const windowMargin = 2.0

// runWindow migrates tenants of each size PostgreSQL → PostgreSQL through
// the hooks, from /start to ready-to-commit, and prints the table a partner
// reads to set maxMigrationDurationHours.
func (m *Main) runWindow(ctx context.Context, dir string, keep func(*process, error) (*process, error)) error {
	sizes := slices.Clone(m.Migr.WindowRows)
	slices.Sort(sizes)
	pg, err := startPostgres(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = pg.Stop() }()
	type point struct {
		rows int
		t    migTiming
	}
	var pts []point
	for _, rows := range sizes {
		fmt.Fprintf(m.Stderr, "window: generating a %d-row tenant…\n", rows)
		env, err := m.prepareMigration(ctx, "postgres", filepath.Join(dir, "w"+strconv.Itoa(rows)), pg, rows, keep)
		if err != nil {
			return err
		}
		t, _, err := env.migrate(ctx, m.Migr.MigrateTimeout, nil)
		env.proc.stop()
		if err != nil {
			return fmt.Errorf("%d rows: %w", rows, err)
		}
		fmt.Fprintf(m.Stderr, "window: %d rows in %s\n", rows, t.Wall.Round(time.Millisecond))
		pts = append(pts, point{rows, t})
	}
	// t = fixed + rows/rate, from the two largest sizes (the smallest is
	// mostly fixed cost); one size alone gives the rate with no fixed part.
	last := pts[len(pts)-1]
	fixed, perRow := 0.0, last.t.Wall.Seconds()/float64(last.rows)
	if len(pts) >= 2 {
		prev := pts[len(pts)-2]
		perRow = (last.t.Wall.Seconds() - prev.t.Wall.Seconds()) / float64(last.rows-prev.rows)
		fixed = max(0, last.t.Wall.Seconds()-perRow*float64(last.rows))
		if perRow <= 0 { // noise: fall back to the largest size's average
			fixed, perRow = 0, last.t.Wall.Seconds()/float64(last.rows)
		}
	}
	predict := func(rows float64) time.Duration {
		return time.Duration((fixed + perRow*rows) * float64(time.Second))
	}
	fmt.Fprintf(m.Stdout, "window: /start to ready-to-commit, PostgreSQL → PostgreSQL (fsync on), a tenth properties and the rest one app table; copy, checkpoints and verification included\n")
	fmt.Fprintf(m.Stdout, "%12s  %14s  %10s  %10s  %10s  %s\n", "tenant rows", "start→ready", "copy", "verify", "rows/s", "")
	for _, p := range pts {
		fmt.Fprintf(m.Stdout, "%12d  %14s  %10s  %10s  %10.0f  measured\n", p.rows, p.t.Wall.Round(time.Millisecond),
			p.t.Copy.Round(time.Millisecond), p.t.Verify.Round(time.Millisecond), float64(p.rows)/p.t.Wall.Seconds())
	}
	for _, rows := range []int{10_000_000, 100_000_000} {
		if rows > last.rows {
			d := predict(float64(rows))
			fmt.Fprintf(m.Stdout, "%12d  %14s  %10s  %10s  %10.0f  extrapolated\n", rows, d.Round(time.Second), "-", "-", float64(rows)/d.Seconds())
		}
	}
	fmt.Fprintf(m.Stdout, "\nrate: %.0f rows/s beyond a fixed %.1f s (from the two largest sizes)\n", 1/perRow, fixed)
	fmt.Fprintln(m.Stdout, "largest tenant that fits, at the measured rate and at half of it (margin for a busy database):")
	for _, w := range windows {
		fits := (w.d.Seconds() - fixed) / perRow
		fmt.Fprintf(m.Stdout, "  %-24s %14s rows measured, %14s rows with margin\n", w.name, countHuman(fits), countHuman(fits/windowMargin))
	}
	fmt.Fprintln(m.Stdout, "maxMigrationDurationHours to declare (measured time × 2, rounded up to a whole hour, at least 1):")
	for _, rows := range []int{1_000_000, 10_000_000, 50_000_000, 100_000_000} {
		d := predict(float64(rows))
		h := max(1, int(math.Ceil(windowMargin*d.Hours())))
		fmt.Fprintf(m.Stdout, "  %12s rows: ~%-10s → %d\n", countHuman(float64(rows)), d.Round(time.Second), h)
	}
	return nil
}

// countHuman writes a large count with a unit: 12.3M, 450k.
func countHuman(n float64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fG", n/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fk", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}
