// Package pgtest gives tests a real PostgreSQL: a fresh, empty database per
// test on a server shared by the test binary, found in the environment, started
// in Docker, or run from the PostgreSQL binaries installed on the machine.
//
// Sources, tried in this order when the first test asks for a database:
//
//  1. REALMHOOK_TEST_POSTGRES: a postgres:// URL of a server where the URL's
//     user may CREATE DATABASE. Used as given; an unreachable one is fatal.
//  2. A Docker engine answering within a couple of seconds: a postgres
//     container started with testcontainers-go.
//  3. initdb and postgres found on PATH or under
//     /usr/lib/postgresql/*/bin: a throwaway cluster in a temporary directory,
//     listening on a unix socket there and on a free TCP port on 127.0.0.1,
//     with durability switched off for speed.
//
// With none available the test fails when CI is set and is skipped otherwise.
//
// A package that uses pgtest should stop the shared server when its tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// (or call Shutdown after m.Run). Without it a throwaway cluster still dies
// with the test binary (it gets a parent-death signal), but its temporary
// directory and a Docker container outlive it until the reaper runs.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/realmhook/realmhook/internal/pgcluster"
)

// EnvURL names the environment variable that points pgtest at an existing server.
const EnvURL = "REALMHOOK_TEST_POSTGRES"

// Source names where the shared server came from.
const (
	SourceEnv            = "env"
	SourceTestcontainers = "testcontainers"
	SourceInitdb         = "initdb"
)

// server is the shared PostgreSQL of this test binary.
type server struct {
	source   string
	adminURL string // URL of a database the admin user can CREATE DATABASE from
	version  string
	stop     func() error
	cluster  *pgcluster.Cluster // only for SourceInitdb
}

var (
	startOnce sync.Once
	shared    *server
	startErr  error      // a source was found but failed to start
	noSource  string     // why no source was found (empty when one was)
	mu        sync.Mutex // serialises Restart and Shutdown
)

// Main runs the package's tests and then stops the shared server. Call it from
// TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if err := Shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: shutdown:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Shutdown stops the shared server if this binary started one (a throwaway
// cluster is stopped and its directory removed; a container is terminated). A
// server named by REALMHOOK_TEST_POSTGRES is left running. Safe to call when no
// server was started and more than once.
func Shutdown() error {
	mu.Lock()
	defer mu.Unlock()
	if shared == nil || shared.stop == nil {
		return nil
	}
	stop := shared.stop
	shared.stop = nil
	return stop()
}

// Source reports which source the shared server came from, starting it if
// needed; see the package comment for how the source is chosen.
func Source(t testing.TB) string {
	t.Helper()
	return mustServer(t).source
}

// AdminURL returns a URL of the shared server's administrative database
// ("postgres" for a cluster or container; the URL as given for
// REALMHOOK_TEST_POSTGRES).
func AdminURL(t testing.TB) string {
	t.Helper()
	return mustServer(t).adminURL
}

// NewDatabase creates a fresh, empty database on the shared server and returns
// a postgres:// URL to it. The database is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	s := mustServer(t)
	name := databaseName(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adminExec(ctx, s.adminURL, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends sessions a test left open (pools not closed, spawned
		// processes still running) so the drop does not fail on them.
		if err := adminExec(ctx, s.adminURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := withDatabase(s.adminURL, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// Restart restarts the shared throwaway cluster (a fast shutdown, which ends
// every session, then a start on the same port) and returns once it accepts
// connections again. Every test of the binary sharing the server sees it, so
// tests that call Restart should not run in parallel with others. Only the
// initdb source can be restarted; with another source the test fails.
func Restart(t testing.TB) {
	t.Helper()
	s := mustServer(t)
	if s.cluster == nil {
		t.Fatalf("pgtest: Restart needs the initdb source, but the server came from %s (unset %s and have no Docker engine to use initdb)", s.source, EnvURL)
	}
	mu.Lock()
	defer mu.Unlock()
	if s.stop == nil {
		t.Fatal("pgtest: Restart after Shutdown")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.cluster.Restart(ctx); err != nil {
		t.Fatalf("pgtest: restart: %v", err)
	}
}

// mustServer returns the shared server, starting it on first use; it fails or
// skips the test when none can be had.
func mustServer(t testing.TB) *server {
	t.Helper()
	startOnce.Do(func() {
		shared, noSource, startErr = start()
		if shared != nil {
			fmt.Fprintf(os.Stderr, "pgtest: using %s (postgres %s)\n", describe(shared), shared.version)
		}
	})
	switch {
	case startErr != nil:
		t.Fatalf("pgtest: %v", startErr)
	case shared == nil && os.Getenv("CI") != "":
		t.Fatalf("pgtest: no PostgreSQL for tests (CI is set): %s", noSource)
	case shared == nil:
		t.Skipf("pgtest: no PostgreSQL for tests: %s", noSource)
	}
	return shared
}

func describe(s *server) string {
	switch s.source {
	case SourceInitdb:
		return fmt.Sprintf("initdb cluster at 127.0.0.1:%d", s.cluster.Port())
	case SourceEnv:
		return EnvURL + " server at " + redact(s.adminURL)
	default:
		return "testcontainers postgres at " + redact(s.adminURL)
	}
}

// start picks a source. It returns the server, or the reasons no source was
// found, or an error when a source was chosen but failed.
func start() (*server, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	if u := os.Getenv(EnvURL); u != "" {
		s, err := fromEnv(ctx, u)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", EnvURL, err)
		}
		return s, "", nil
	}

	var reasons []string
	s, err := fromDocker(ctx)
	if err == nil {
		return s, "", nil
	}
	reasons = append(reasons, "docker: "+err.Error())

	s, err = fromInitdb(ctx)
	if err == nil {
		return s, "", nil
	}
	if !errors.Is(err, pgcluster.ErrNoBinaries) {
		return nil, "", fmt.Errorf("initdb cluster: %w", err)
	}
	reasons = append(reasons, "initdb: "+err.Error())
	return nil, strings.Join(reasons, "; ") + "; set " + EnvURL + " to use a server", nil
}

func fromEnv(ctx context.Context, u string) (*server, error) {
	v, err := serverVersion(ctx, u)
	if err != nil {
		return nil, err
	}
	return &server{source: SourceEnv, adminURL: u, version: v}, nil
}

func serverVersion(ctx context.Context, u string) (string, error) {
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	var v string
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&v); err != nil {
		return "", fmt.Errorf("server version: %w", err)
	}
	return v, nil
}

func adminExec(ctx context.Context, adminURL, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

// databaseName is unique across test binaries sharing one server, and
// readable enough to tell which test left a database behind.
func databaseName(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	return "pgtest_" + hex.EncodeToString(b[:]) + "_" + name
}

func withDatabase(raw, db string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse server URL: %w", err)
	}
	u.Path = "/" + db
	u.RawPath = ""
	return u.String(), nil
}

// redact hides a password in a URL printed to the test log.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
