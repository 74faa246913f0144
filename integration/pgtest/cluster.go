package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
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

var errNoBinaries = errors.New("initdb: no PostgreSQL binaries (initdb, postgres) on PATH or under /usr/lib/postgresql/*/bin")

// maxSocketDir keeps "<dir>/.s.PGSQL.<port>" under the ~107-byte limit of a
// unix socket path.
const maxSocketDir = 80

// cluster is a throwaway PostgreSQL cluster run from the local binaries.
type cluster struct {
	bindir string
	dir    string // temporary root: holds data/, the socket and the log
	port   int
	cred   *syscall.Credential // non-nil when running as root
	// exited is closed when the running postmaster exits; err then holds why.
	exited chan struct{}
	err    error
	pid    int
}

func fromInitdb(ctx context.Context) (*server, error) {
	bindir, err := findBinaries()
	if err != nil {
		return nil, err
	}
	c := &cluster{bindir: bindir}
	if err := c.create(ctx); err != nil {
		c.remove()
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		c.remove()
		return nil, err
	}
	admin := c.url("postgres")
	v, err := serverVersion(ctx, admin)
	if err != nil {
		_ = c.stop()
		return nil, err
	}
	return &server{source: SourceInitdb, adminURL: admin, version: v, cluster: c, stop: c.stop}, nil
}

// findBinaries returns the directory holding initdb and postgres: initdb's own
// directory (symlinks resolved, since postgres finds its share files relative
// to its real location) or the newest /usr/lib/postgresql/N/bin.
func findBinaries() (string, error) {
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
	return "", errNoBinaries
}

func versionOf(bindir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(bindir)), 64)
	return v
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func (c *cluster) create(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	if len(dir) > maxSocketDir {
		_ = os.Remove(dir)
		if dir, err = os.MkdirTemp("/tmp", "pgtest-"); err != nil {
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

	cmd := c.command(ctx, "initdb", "-D", c.dataDir(), "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
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

func (c *cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *cluster) logFile() string { return filepath.Join(c.dir, "postgres.log") }

func (c *cluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

func (c *cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bindir, name), args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

// start runs the postmaster as a child of this process and waits until it
// accepts connections.
func (c *cluster) start(ctx context.Context) error {
	logf, err := os.OpenFile(c.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("postgres log: %w", err)
	}
	cmd := exec.Command(filepath.Join(c.bindir, "postgres"),
		"-D", c.dataDir(),
		"-k", c.dir,
		"-h", "127.0.0.1",
		"-p", strconv.Itoa(c.port),
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
		"-c", "shared_buffers=128MB",
		"-c", "timezone=UTC",
	)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdout, cmd.Stderr = logf, logf
	// SIGQUIT (immediate shutdown) when this process dies without Shutdown,
	// so a crashed or killed test binary leaves no server running.
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
		conn, err := pgx.Connect(cctx, c.url("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("postgres exited during start-up: %v: %s", c.err, c.logTail())
		case <-ctx.Done():
			_ = c.signalAndWait(syscall.SIGQUIT, 10*time.Second)
			return fmt.Errorf("postgres not ready: %w (last error %v): %s", ctx.Err(), err, c.logTail())
		case <-tick.C:
		}
	}
}

// restart does what `pg_ctl restart -m fast` does, on the same port.
func (c *cluster) restart(ctx context.Context) error {
	if err := c.signalAndWait(syscall.SIGINT, 30*time.Second); err != nil {
		return err
	}
	return c.start(ctx)
}

// stop shuts the cluster down fast and removes its directory.
func (c *cluster) stop() error {
	err := c.signalAndWait(syscall.SIGINT, 30*time.Second)
	if err != nil {
		_ = c.signalAndWait(syscall.SIGKILL, 10*time.Second)
	}
	c.remove()
	return err
}

func (c *cluster) remove() {
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// signalAndWait sends sig to the postmaster (SIGINT: fast shutdown; SIGQUIT:
// immediate) and waits for it to exit.
func (c *cluster) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
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
		return fmt.Errorf("postgres did not exit within %s after %s: %s", timeout, sig, c.logTail())
	}
}

func (c *cluster) logTail() string {
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
