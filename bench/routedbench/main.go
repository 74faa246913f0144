// Command routedbench measures a routed tenant request through realmhook
// (embedded shape, SQLite) against two servers of its own started in the same
// command: a bare net/http handler answering the same JSON from memory, and a
// careful hand-written Go handler (golang-jwt with HS256 pinned, qsh checked,
// tenants in a map in memory). Every server runs in its own process and gets
// the same closed-loop load: Concurrency workers on kept-alive connections,
// each request with its own pre-signed token for a tenant picked at random,
// a warm-up, and repetitions interleaved across servers so that a noisy
// neighbour hurts every server alike. It prints requests/s, p50, p99, the
// ratios, and realmhook's memory per tenant from 1,000 to 100,000 tenants.
//
//	routedbench -realmhook bin/realmhook
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "routedbench:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "routedbench:", err)
		os.Exit(1)
	}
}

// Main is the program: flags in, a table of results out.
type Main struct {
	Realmhook   string
	ACE         string
	Suites      []string
	Migr        migrationFlags
	Load        load
	Reps        int
	Small       int
	Large       int
	LogLevel    string
	Dir         string
	Serve       string
	ServeCount  int
	ServeConfig string

	Stdout io.Writer
	Stderr io.Writer
}

// NewMain returns a Main writing to the process's stdout and stderr.
func NewMain() *Main { return &Main{Stdout: os.Stdout, Stderr: os.Stderr} }

// ParseFlags reads the command line.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("routedbench", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&m.Realmhook, "realmhook", "bin/realmhook", "the realmhook `binary` to start")
	suites := fs.String("suite", "routed", "suites to run, comma-separated: routed, ace, scale, status, window, gateway")
	fs.StringVar(&m.ACE, "ace", "bench/ace", "the ACE app's `directory` (app.js, node_modules installed by npm ci)")
	m.addMigrationFlags(fs)
	fs.IntVar(&m.Load.Concurrency, "c", 64, "concurrent requests (closed loop)")
	fs.DurationVar(&m.Load.Duration, "duration", 5*time.Second, "longest measured run")
	fs.IntVar(&m.Load.Requests, "requests", 100000, "most requests in a measured run (each with its own pre-signed token)")
	fs.DurationVar(&m.Load.Warmup, "warmup", time.Second, "warm-up before each run")
	fs.IntVar(&m.Reps, "reps", 3, "interleaved repetitions; the table shows medians")
	tenants := fs.String("tenants", "1000,100000", "the small and the large tenant count")
	fs.StringVar(&m.LogLevel, "log", "info", "realmhook's log level (its access log is part of what a request costs)")
	fs.StringVar(&m.Dir, "dir", "", "work directory (default: a temporary directory, removed afterwards)")
	fs.StringVar(&m.Serve, "serve", "", "internal: run the bare or careful server in this process")
	fs.IntVar(&m.ServeCount, "serve-tenants", 1000, "internal: tenants of the careful server")
	fs.StringVar(&m.ServeConfig, "serve-config", "", "internal: the realmhook config of the app server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range strings.Split(*suites, ",") {
		switch s = strings.TrimSpace(s); s {
		case "routed", "ace", "scale", "status", "window", "gateway":
			m.Suites = append(m.Suites, s)
		default:
			return fmt.Errorf("-suite %q: want routed, ace, scale, status, window or gateway", s)
		}
	}
	if err := m.checkMigrationFlags(); err != nil {
		return err
	}
	small, large, ok := strings.Cut(*tenants, ",")
	var err1, err2 error
	m.Small, err1 = strconv.Atoi(small)
	m.Large, err2 = strconv.Atoi(large)
	if !ok || err1 != nil || err2 != nil || m.Small < 1 || m.Large < m.Small {
		return fmt.Errorf("-tenants %q: want SMALL,LARGE with 1 <= SMALL <= LARGE", *tenants)
	}
	if m.Load.Concurrency < 1 || m.Load.Requests < m.Load.Concurrency || m.Reps < 1 {
		return fmt.Errorf("-c, -requests and -reps must be positive, -requests at least -c")
	}
	return nil
}

// scenario is one server and method measured in every repetition.
type scenario struct {
	Name   string
	Method string
	Target *target
	Runs   []runResult
}

// Run runs each suite asked for, each starting its own servers and
// stopping them before the next begins.
func (m *Main) Run(ctx context.Context) error {
	if m.Serve == "app" {
		return serveApp(ctx, m.ServeConfig, m.LogLevel, os.Stdout)
	}
	if m.Serve != "" {
		return serveChild(m.Serve, m.ServeCount, m.Stdout)
	}
	dir := m.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "routedbench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	fmt.Fprintf(m.Stdout, "routedbench: %d CPUs, GOMAXPROCS %d, %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	for _, suite := range m.Suites {
		fmt.Fprintf(m.Stdout, "\n== %s ==\n", suite)
		if err := m.runSuite(ctx, suite, filepath.Join(dir, suite)); err != nil {
			return fmt.Errorf("%s: %w", suite, err)
		}
	}
	return nil
}

// runSuite runs one suite; every process it starts through keep is stopped
// when it returns.
func (m *Main) runSuite(ctx context.Context, suite, dir string) error {
	var procs []*process
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	keep := func(p *process, err error) (*process, error) {
		if err == nil {
			procs = append(procs, p)
		}
		return p, err
	}
	switch suite {
	case "routed":
		return m.runRouted(ctx, dir, keep)
	case "ace":
		return m.runACE(ctx, dir, keep)
	case "scale":
		return m.runScale(ctx, dir, keep)
	case "status":
		return m.runStatus(ctx, dir, keep)
	case "window":
		return m.runWindow(ctx, dir, keep)
	case "gateway":
		return m.runGateway(ctx, dir, keep)
	}
	return fmt.Errorf("unknown suite %q", suite)
}

// runRouted is the routed request against the bare and the careful handler.
func (m *Main) runRouted(ctx context.Context, dir string, keep func(*process, error) (*process, error)) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "concurrency %d, runs of at most %s or %d requests, warm-up %s, %d repetitions\n",
		m.Load.Concurrency, m.Load.Duration, m.Load.Requests, m.Load.Warmup, m.Reps)
	bare, err := keep(startBaseline(ctx, self, "bare", 1))
	if err != nil {
		return err
	}
	careful, err := keep(startBaseline(ctx, self, "careful", m.Small))
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "seeding realmhook with %d and %d tenants…\n", m.Small, m.Large)
	rhSmallProc, smallTenants, err := startRealmhook(ctx, m.Realmhook, filepath.Join(dir, "small"), m.Small, m.LogLevel)
	if _, err := keep(rhSmallProc, err); err != nil {
		return err
	}
	rhLargeProc, largeTenants, err := startRealmhook(ctx, m.Realmhook, filepath.Join(dir, "large"), m.Large, m.LogLevel)
	if _, err := keep(rhLargeProc, err); err != nil {
		return err
	}
	rssSmallIdle, rssLargeIdle := rhSmallProc.rssBytes(), rhLargeProc.rssBytes()

	tBare := &target{Name: "bare", BaseURL: bare.base, Tenants: smallTenants}
	tCareful := &target{Name: "careful", BaseURL: careful.base, Tenants: smallTenants}
	tSmall := &target{Name: "realmhook", BaseURL: rhSmallProc.base, Tenants: smallTenants}
	tLarge := &target{Name: "realmhook", BaseURL: rhLargeProc.base, Tenants: largeTenants}
	small, large := countName(m.Small), countName(m.Large)
	scenarios := []*scenario{
		{Name: "bare GET", Method: http.MethodGet, Target: tBare},
		{Name: "careful GET (" + small + " tenants)", Method: http.MethodGet, Target: tCareful},
		{Name: "realmhook GET (" + small + " tenants)", Method: http.MethodGet, Target: tSmall},
		{Name: "realmhook GET (" + large + " tenants)", Method: http.MethodGet, Target: tLarge},
		{Name: "bare PUT", Method: http.MethodPut, Target: tBare},
		{Name: "careful PUT (" + small + " tenants)", Method: http.MethodPut, Target: tCareful},
		{Name: "realmhook PUT (" + small + " tenants)", Method: http.MethodPut, Target: tSmall},
	}
	rnd := newRand()
	for rep := 1; rep <= m.Reps; rep++ {
		for _, sc := range scenarios {
			res, err := measure(ctx, *sc.Target, sc.Method, m.Load, rnd)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.Name, err)
			}
			sc.Runs = append(sc.Runs, res)
			fmt.Fprintf(m.Stderr, "rep %d %-32s %8.0f req/s  p50 %-9s p99 %s\n", rep, sc.Name, res.perSec(), round(res.P50), round(res.P99))
		}
	}
	r := report{
		Scenarios: scenarios, Small: m.Small, Large: m.Large,
		RSSSmall: rhSmallProc.rssBytes(), RSSLarge: rhLargeProc.rssBytes(),
		RSSSmallIdle: rssSmallIdle, RSSLargeIdle: rssLargeIdle,
		Concurrency: m.Load.Concurrency,
	}
	r.print(m.Stdout)
	return nil
}

// countName writes a tenant or row count the way people say it: 1k, 100k, 1M.
func countName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

// newRand is the bench's random source: seeded, so runs pick the same tenants.
func newRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// round is a latency as the tables print it.
func round(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
