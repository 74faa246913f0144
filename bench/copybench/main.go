// Command copybench measures how fast realmhook's migration engine copies and
// verifies one tenant between two databases, against the database's own bulk
// copy (the sqlite3 shell's ATTACH + INSERT … SELECT, or psql's binary COPY)
// run on the same data in the same run, and prints the ratio.
//
// Each realmhook copy runs in a child process (this binary re-executed with
// -child) so that the child's peak RSS is the copy's alone: data generation
// and the baseline happen in the parent or in their own processes.
//
//	copybench -backend sqlite -rows 100000,1000000
//	copybench -backend postgres -rows 100000,1000000   # REALMHOOK_BENCH_POSTGRES or a throwaway cluster
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/migration"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "copybench:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "copybench:", err)
		os.Exit(1)
	}
}

// Main is the program: flags in, a table of results out.
type Main struct {
	Backend      string
	Shape        string
	shape        []benchTable
	Rows         []int
	Batch        int
	Checkpoint   int
	Dir          string
	SkipBaseline bool
	CPUProfile   string
	// Child, when set, is the JSON spec of one copy to run in this process.
	Child string
	// Transfer copies through the transfer API of a second process that
	// holds the target (the regional shape), not in one process.
	Transfer bool
	// ServeTarget, when set ("BACKEND WHERE"), makes this process that
	// second process.
	ServeTarget string

	Stdout io.Writer
	Stderr io.Writer
	Logger *slog.Logger
}

// NewMain returns a Main writing to the process's stdout and stderr.
func NewMain() *Main {
	return &Main{Stdout: os.Stdout, Stderr: os.Stderr}
}

// ParseFlags reads the command line.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("copybench", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	rows := fs.String("rows", "100000,1000000", "tenant sizes to run, comma-separated (rows over all copied tables)")
	fs.StringVar(&m.Backend, "backend", "sqlite", "sqlite or postgres")
	fs.StringVar(&m.Shape, "shape", "notes", "the tenant's tables: notes (properties and one app table) or spread (properties, a wide table with text and JSON, a narrow one with most rows)")
	fs.IntVar(&m.Batch, "batch", migration.DefaultBatchRows, "rows per read and per write batch (migration.Config.BatchRows)")
	fs.IntVar(&m.Checkpoint, "checkpoint", migration.DefaultCheckpointRows, "rows between checkpoints (migration.Config.CheckpointRows)")
	fs.StringVar(&m.Dir, "dir", "", "work directory for the SQLite files (default: a temporary directory, removed afterwards)")
	fs.BoolVar(&m.SkipBaseline, "skip-baseline", false, "do not run the sqlite3/psql baseline")
	fs.StringVar(&m.CPUProfile, "cpuprofile", "", "write each child's CPU profile to FILE.<backend>-<rows>.prof")
	fs.StringVar(&m.Child, "child", "", "internal: run one copy described by this JSON spec and print its result")
	fs.BoolVar(&m.Transfer, "transfer", false, "copy through the transfer API of a second process holding the target, over loopback HTTP (the regional shape; postgres only)")
	fs.StringVar(&m.ServeTarget, "serve-target", "", "internal: serve this target (\"BACKEND WHERE\") over the transfer API and print the address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return realmhook.Errorf(realmhook.EINVALID, "unexpected argument %q", fs.Arg(0))
	}
	if m.Child != "" || m.ServeTarget != "" {
		return nil
	}
	shape, err := lookupShape(m.Shape)
	if err != nil {
		return err
	}
	m.shape = shape
	sizes, err := parseSizes(*rows)
	if err != nil {
		return err
	}
	m.Rows = sizes
	switch {
	case m.Backend != "sqlite" && m.Backend != "postgres":
		return realmhook.Errorf(realmhook.EINVALID, "-backend must be sqlite or postgres, not %q", m.Backend)
	case m.Batch <= 0:
		return realmhook.Errorf(realmhook.EINVALID, "-batch must be positive, got %d", m.Batch)
	case m.Checkpoint <= 0:
		return realmhook.Errorf(realmhook.EINVALID, "-checkpoint must be positive, got %d", m.Checkpoint)
	case m.Transfer && m.Backend != "postgres":
		return realmhook.Errorf(realmhook.EINVALID, "-transfer runs with -backend postgres only")
	}
	return nil
}

// parseSizes reads "-rows": positive row counts, at least minRows each so that
// every table and the other tenant get rows.
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n < minRows {
			return nil, realmhook.Errorf(realmhook.EINVALID, "-rows: %q is not a row count of at least %d", f, minRows)
		}
		out = append(out, n)
	}
	return out, nil
}

// Run runs the benchmark (or, with -child, one copy) and prints the results.
func (m *Main) Run(ctx context.Context) error {
	if m.Logger == nil {
		m.Logger = slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if m.Child != "" {
		return m.runChild(ctx)
	}
	if m.ServeTarget != "" {
		return serveTarget(ctx, m.ServeTarget, m.CPUProfile, os.Stdin, m.Stdout, m.Logger)
	}
	var results []result
	var err error
	switch m.Backend {
	case "sqlite":
		results, err = m.benchSQLite(ctx)
	case "postgres":
		results, err = m.benchPostgres(ctx)
	}
	if err != nil {
		return err
	}
	printReport(m.Stdout, results)
	return nil
}

// progress tells the operator what the bench is doing; it goes to stderr so
// that stdout holds only the table.
func (m *Main) progress(format string, args ...any) {
	fmt.Fprintf(m.Stderr, "copybench: "+format+"\n", args...)
}
