package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/realmhook/realmhook"
)

// EnvPostgres names a PostgreSQL server (a postgres:// URL whose user may
// CREATE DATABASE) for the bench; without it the bench runs its own.
const EnvPostgres = "REALMHOOK_BENCH_POSTGRES"

// pgServer is where the PostgreSQL bench creates its databases.
type pgServer struct {
	// admin is a URL of a database to run CREATE/DROP DATABASE from.
	admin string
	// stop shuts a throwaway cluster down; nil for a server from the env.
	stop func() error
}

// dbURL is the URL of database name on the server.
func (s *pgServer) dbURL(name string) string {
	u, _ := url.Parse(s.admin) // checked by openPGServer
	u.Path = "/" + name
	return u.String()
}

// openPGServer returns the server from EnvPostgres, or starts a throwaway
// cluster with durability as in production (fsync on).
func openPGServer(ctx context.Context) (*pgServer, error) {
	if env := os.Getenv(EnvPostgres); env != "" {
		u, err := url.Parse(env)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, realmhook.Errorf(realmhook.EINVALID, "%s must be a postgres:// URL", EnvPostgres)
		}
		return &pgServer{admin: env}, nil
	}
	return startCluster(ctx)
}

// startCluster runs initdb and postgres from the machine's PostgreSQL
// binaries in a fresh temporary directory, listening only on a unix socket
// there. Running as root, both run as the postgres user.
func startCluster(ctx context.Context) (*pgServer, error) {
	bindir, err := pgBinaries()
	if err != nil {
		return nil, err
	}
	// Short, because the socket path "<dir>/.s.PGSQL.5432" must fit in ~107 bytes.
	dir, err := os.MkdirTemp("/tmp", "rhbench-")
	if err != nil {
		return nil, fmt.Errorf("cluster dir: %w", err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs a postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, int(uid), int(gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("chown %s: %w", dir, err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bindir, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions")
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, bytes.TrimSpace(out))
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("postgres log: %w", err)
	}
	// fsync, synchronous_commit and full_page_writes stay at their durable
	// defaults: the bench measures what production pays.
	pg := exec.Command(filepath.Join(bindir, "postgres"), "-D", data, "-k", dir,
		"-c", "listen_addresses=", "-c", "timezone=UTC", "-c", "max_wal_size=4GB")
	pg.Env = append(os.Environ(), "LC_ALL=C")
	pg.Stdout, pg.Stderr = logf, logf
	// SIGQUIT if the bench dies without stopping it, so no server outlives it.
	pg.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		// The parent-death signal follows the thread that forked: keep it.
		runtime.LockOSThread()
		if err := pg.Start(); err != nil {
			started <- err
			close(exited)
			return
		}
		started <- nil
		_ = pg.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &pgServer{admin: "postgres://postgres@/postgres?host=" + url.QueryEscape(dir) + "&sslmode=disable"}
	s.stop = func() error {
		// SIGINT is PostgreSQL's fast shutdown.
		_ = pg.Process.Signal(syscall.SIGINT)
		var err error
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = pg.Process.Kill()
			<-exited
			err = errors.New("postgres did not stop within 30s; killed")
		}
		logf.Close()
		return errors.Join(err, os.RemoveAll(dir))
	}
	if err := waitReady(ctx, s.admin, exited); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		_ = s.stop()
		return nil, fmt.Errorf("%w\n%s", err, log)
	}
	return s, nil
}

// waitReady polls the server until it accepts a connection, it exits, or a
// deadline passes.
func waitReady(ctx context.Context, admin string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := pgx.Connect(ctx, admin)
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-exited:
			return errors.New("postgres exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections: %w", err)
		case <-tick.C:
		}
	}
}

// pgBinaries finds the directory holding initdb and postgres: initdb's own
// (symlinks resolved, as postgres finds its files relative to itself) or the
// newest /usr/lib/postgresql/N/bin.
func pgBinaries() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(found, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(found[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(found[j])))
		return vi > vj
	})
	for _, d := range append(dirs, found...) {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb, postgres) found: set %s or apt-get install postgresql", EnvPostgres)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
