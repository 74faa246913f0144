package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// Goals from the issue that asked for this bench.
const (
	goalVsBare    = 0.5 // realmhook GET ÷ bare GET, at least
	goalVsCareful = 0.9 // realmhook GET ÷ careful GET, at least
	goalP99       = 10 * time.Millisecond
	goalWrites    = 0.5 // realmhook PUT ÷ realmhook GET, at least
	goalFlat      = 1.2 // realmhook GET at the small tenant count ÷ at the large, at most
)

// summary is the median of a scenario's runs, metric by metric.
type summary struct {
	PerSec   float64
	P50, P99 time.Duration
}

func summarise(runs []runResult) summary {
	rates := make([]float64, len(runs))
	p50s := make([]time.Duration, len(runs))
	p99s := make([]time.Duration, len(runs))
	for i, r := range runs {
		rates[i], p50s[i], p99s[i] = r.perSec(), r.P50, r.P99
	}
	slices.Sort(rates)
	slices.Sort(p50s)
	slices.Sort(p99s)
	mid := len(runs) / 2
	return summary{PerSec: rates[mid], P50: p50s[mid], P99: p99s[mid]}
}

type report struct {
	Scenarios                  []*scenario
	Small, Large               int
	RSSSmall, RSSLarge         int64
	RSSSmallIdle, RSSLargeIdle int64
	Concurrency                int
}

// printTable writes each scenario's medians and returns them in order.
func printTable(w io.Writer, scenarios []*scenario) []summary {
	sums := make([]summary, len(scenarios))
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\trequests/s\tp50\tp99\t")
	for i, sc := range scenarios {
		sums[i] = summarise(sc.Runs)
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t\n", sc.Name, sums[i].PerSec, round(sums[i].P50), round(sums[i].P99))
	}
	tw.Flush()
	return sums
}

// check writes one goal's verdict line.
func check(w io.Writer, ok bool, format string, args ...any) {
	mark := "met   "
	if !ok {
		mark = "MISSED"
	}
	fmt.Fprintf(w, "  %s %s\n", mark, fmt.Sprintf(format, args...))
}

func (r report) print(w io.Writer) {
	sums := printTable(w, r.Scenarios)
	// The scenario order is fixed in Run.
	bareGet, carefulGet, rhGet, rhGetLarge, rhPut := sums[0], sums[1], sums[2], sums[3], sums[6]
	perTenant := float64(r.RSSLarge-r.RSSSmall) / float64(r.Large-r.Small)
	fmt.Fprintf(w, "\nrealmhook RSS after load: %.1f MiB at %d tenants, %.1f MiB at %d tenants: %.0f bytes per tenant (at start: %.1f and %.1f MiB)\n",
		mib(r.RSSSmall), r.Small, mib(r.RSSLarge), r.Large, perTenant, mib(r.RSSSmallIdle), mib(r.RSSLargeIdle))
	fmt.Fprintln(w, "\ngoals:")
	check := func(ok bool, format string, args ...any) { check(w, ok, format, args...) }
	vsBare := rhGet.PerSec / bareGet.PerSec
	vsCareful := rhGet.PerSec / carefulGet.PerSec
	writes := rhPut.PerSec / rhGet.PerSec
	flat := rhGet.PerSec / rhGetLarge.PerSec
	check(vsBare >= goalVsBare, "realmhook GET ÷ bare GET = %.2f (goal ≥ %.1f)", vsBare, goalVsBare)
	check(vsCareful >= goalVsCareful, "realmhook GET ÷ careful GET = %.2f (goal ≥ %.1f)", vsCareful, goalVsCareful)
	check(rhGet.P99 < goalP99, "realmhook GET p99 = %s at concurrency %d (goal < %s)", rhGet.P99.Round(10*time.Microsecond), r.Concurrency, goalP99)
	check(rhPut.P99 < goalP99, "realmhook PUT p99 = %s at concurrency %d (goal < %s)", rhPut.P99.Round(10*time.Microsecond), r.Concurrency, goalP99)
	check(writes >= goalWrites, "realmhook PUT ÷ realmhook GET = %.2f (goal ≥ %.1f)", writes, goalWrites)
	check(flat <= goalFlat, "realmhook GET at %d tenants ÷ at %d tenants = %.2f (goal ≤ %.1f)", r.Small, r.Large, flat, goalFlat)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
