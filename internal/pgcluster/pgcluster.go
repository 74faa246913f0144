// Package pgcluster runs a throwaway PostgreSQL cluster from the machine's
// own binaries (initdb, postgres): for the integration tests (through
// integration/pgtest) and for the copy bench. It lives under internal/, not
// under integration/, so that a program (bench/copybench) can use it without
// importing test helpers.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries is Start's error when the machine has no PostgreSQL server.
var ErrNoBinaries = errors.New("no PostgreSQL binaries (initdb, postgres) on PATH or under /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)")

// maxSocketDir keeps "<dir>/.s.PGSQL.<port>" under the ~107-byte limit of a
// unix socket path.
const maxSocketDir = 80

// Options say what kind of cluster to run.
type Options struct {
	// Durable keeps fsync, synchronous_commit and full_page_writes at their
	// defaults, so a bench measures what production pays; tests turn them off.
	Durable bool
	// Settings are extra `-c name=value` server settings.
	Settings []string
}

// Cluster is a running throwaway cluster, listening on 127.0.0.1 at Port and
// on a unix socket in its directory.
type Cluster struct {
	bindir string
	dir    string // temporary root: holds data/, the socket and the log
	port   int
	opts   Options
	cred   *syscall.Credential // non-nil when running as root
	// exited is closed when the running postmaster exits; err then holds why.
	exited chan struct{}
	err    error
	pid    int
}

// Start creates a cluster in a fresh temporary directory and starts it.
// Running as root, initdb and postgres run as the postgres user.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bindir, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bindir: bindir, opts: opts}
	if err := c.create(ctx); err != nil {
		c.remove()
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		c.remove()
		return nil, err
	}
	return c, nil
}

// FindBinaries returns the directory holding initdb and postgres: initdb's own
// directory (symlinks resolved, since postgres finds its share files relative
// to its real location) or the newest /usr/lib/postgresql/N/bin.
func FindBinaries() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
	dirs = append(dirs, matches...)
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func versionOf(bindir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(bindir)), 64)
	return v
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Port is the TCP port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// URL is the TCP URL of database db, as the superuser postgres.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// SocketURL is the unix-socket URL of database db, as the superuser postgres.
func (c *Cluster) SocketURL(db string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable", db, url.QueryEscape(c.dir), c.port)
}

func (c *Cluster) create(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "pgcluster-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	if len(dir) > maxSocketDir {
		_ = os.Remove(dir)
		if dir, err = os.MkdirTemp("/tmp", "pgcluster-"); err != nil {
			return fmt.Errorf("temp dir: %w", err)
		}
	}
	c.dir = dir

	// initdb and postgres refuse to run as root: hand the directory to the
	// postgres user and run them as that user.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root needs a postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, int(uid), int(gid)); err != nil {
			return fmt.Errorf("chown %s to postgres: %w", dir, err)
		}
	}

	args := []string{"-D", c.dataDir(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions"}
	if !c.opts.Durable {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.bindir, "initdb"), args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, bytes.TrimSpace(out))
	}

	port, err := freePort()
	if err != nil {
		return err
	}
	c.port = port
	return nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) logFile() string { return filepath.Join(c.dir, "postgres.log") }

// start runs the postmaster as a child of this process and waits until it
// accepts connections.
func (c *Cluster) start(ctx context.Context) error {
	logf, err := os.OpenFile(c.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("postgres log: %w", err)
	}
	args := []string{
		"-D", c.dataDir(),
		"-k", c.dir,
		"-h", "127.0.0.1",
		"-p", strconv.Itoa(c.port),
		"-c", "timezone=UTC",
	}
	if !c.opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	for _, s := range c.opts.Settings {
		args = append(args, "-c", s)
	}
	cmd := exec.Command(filepath.Join(c.bindir, "postgres"), args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdout, cmd.Stderr = logf, logf
	// SIGQUIT (immediate shutdown) when this process dies without Stop, so
	// a crashed or killed test binary or bench leaves no server running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGQUIT, Credential: c.cred}

	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		// The parent-death signal fires when the thread that forked exits,
		// not the process: keep this goroutine on its thread until the
		// postmaster is gone.
		runtime.LockOSThread()
		defer logf.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			close(exited)
			return
		}
		started <- nil
		c.err = cmd.Wait()
		close(exited)
		// Returning while locked ends the thread, which is what we want.
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	c.exited = exited
	c.pid = cmd.Process.Pid

	// Poll until it answers or exits, within ctx.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, c.URL("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("postgres exited during start-up: %v: %s", c.err, c.LogTail())
		case <-ctx.Done():
			_ = c.signalAndWait(syscall.SIGQUIT, 10*time.Second)
			return fmt.Errorf("postgres not ready: %w (last error %v): %s", ctx.Err(), err, c.LogTail())
		case <-tick.C:
		}
	}
}

// Restart does what `pg_ctl restart -m fast` does, on the same port: every
// connection is cut.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.signalAndWait(syscall.SIGINT, 30*time.Second); err != nil {
		return err
	}
	return c.start(ctx)
}

// Stop shuts the cluster down fast and removes its directory.
func (c *Cluster) Stop() error {
	err := c.signalAndWait(syscall.SIGINT, 30*time.Second)
	if err != nil {
		_ = c.signalAndWait(syscall.SIGKILL, 10*time.Second)
	}
	c.remove()
	return err
}

func (c *Cluster) remove() {
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// signalAndWait sends sig to the postmaster (SIGINT: fast shutdown; SIGQUIT:
// immediate) and waits for it to exit.
func (c *Cluster) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	if c.exited == nil {
		return nil
	}
	select {
	case <-c.exited:
		return nil
	default:
	}
	if err := syscall.Kill(c.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal postgres: %w", err)
	}
	select {
	case <-c.exited:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("postgres did not exit within %s after %s: %s", timeout, sig, c.LogTail())
	}
}

// LogTail is the last lines of the server's log, for error messages.
func (c *Cluster) LogTail() string {
	b, err := os.ReadFile(c.logFile())
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
