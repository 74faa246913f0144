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
	Realmhook  string
	Load       load
	Reps       int
	Small      int
	Large      int
	LogLevel   string
	Dir        string
	Serve      string
	ServeCount int

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
	if err := fs.Parse(args); err != nil {
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

// Run starts every server, measures, prints, and stops them.
func (m *Main) Run(ctx context.Context) error {
	if m.Serve != "" {
		return serveChild(m.Serve, m.ServeCount, m.Stdout)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir := m.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "routedbench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	var procs []*process
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	start := func(p *process, err error) (*process, error) {
		if err == nil {
			procs = append(procs, p)
		}
		return p, err
	}

	fmt.Fprintf(m.Stdout, "routedbench: %d CPUs, GOMAXPROCS %d, %s; concurrency %d, runs of at most %s or %d requests, warm-up %s, %d repetitions\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), m.Load.Concurrency, m.Load.Duration, m.Load.Requests, m.Load.Warmup, m.Reps)
	bare, err := start(startBaseline(ctx, self, "bare", 1))
	if err != nil {
		return err
	}
	careful, err := start(startBaseline(ctx, self, "careful", m.Small))
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "seeding realmhook with %d and %d tenants…\n", m.Small, m.Large)
	rhSmallProc, smallTenants, err := startRealmhook(ctx, m.Realmhook, filepath.Join(dir, "small"), m.Small, m.LogLevel)
	if err != nil {
		return err
	}
	procs = append(procs, rhSmallProc)
	rhLargeProc, largeTenants, err := startRealmhook(ctx, m.Realmhook, filepath.Join(dir, "large"), m.Large, m.LogLevel)
	if err != nil {
		return err
	}
	procs = append(procs, rhLargeProc)
	rssSmallIdle, rssLargeIdle := rhSmallProc.rssBytes(), rhLargeProc.rssBytes()

	tBare := &target{Name: "bare", BaseURL: bare.base, Tenants: smallTenants}
	tCareful := &target{Name: "careful", BaseURL: careful.base, Tenants: smallTenants}
	tSmall := &target{Name: "realmhook", BaseURL: rhSmallProc.base, Tenants: smallTenants}
	tLarge := &target{Name: "realmhook", BaseURL: rhLargeProc.base, Tenants: largeTenants}
	small, large := fmt.Sprintf("%dk", m.Small/1000), fmt.Sprintf("%dk", m.Large/1000)
	if m.Small < 1000 {
		small = strconv.Itoa(m.Small)
	}
	scenarios := []*scenario{
		{Name: "bare GET", Method: http.MethodGet, Target: tBare},
		{Name: "careful GET (" + small + " tenants)", Method: http.MethodGet, Target: tCareful},
		{Name: "realmhook GET (" + small + " tenants)", Method: http.MethodGet, Target: tSmall},
		{Name: "realmhook GET (" + large + " tenants)", Method: http.MethodGet, Target: tLarge},
		{Name: "bare PUT", Method: http.MethodPut, Target: tBare},
		{Name: "careful PUT (" + small + " tenants)", Method: http.MethodPut, Target: tCareful},
		{Name: "realmhook PUT (" + small + " tenants)", Method: http.MethodPut, Target: tSmall},
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for rep := 1; rep <= m.Reps; rep++ {
		for _, sc := range scenarios {
			res, err := measure(ctx, *sc.Target, sc.Method, m.Load, rnd)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.Name, err)
			}
			sc.Runs = append(sc.Runs, res)
			fmt.Fprintf(m.Stderr, "rep %d %-32s %8.0f req/s  p50 %-9s p99 %s\n", rep, sc.Name, res.perSec(),
				res.P50.Round(10*time.Microsecond), res.P99.Round(10*time.Microsecond))
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
