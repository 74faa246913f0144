// Command realmhook serves a Connect app's data residency: descriptor, signed
// install, JWT-verified tenant API routed to the pinned realm, and the host's
// migration hooks.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/config"
	"github.com/realmhook/realmhook/hooks"
	"github.com/realmhook/realmhook/realms"
	"github.com/realmhook/realmhook/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); errors.Is(err, ErrPrinted) {
		os.Exit(0)
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "realmhook:", describe(err))
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "realmhook:", describe(err))
		_ = m.Close()
		os.Exit(1)
	}
	select {
	case <-ctx.Done():
	case err := <-m.Failed():
		fmt.Fprintln(os.Stderr, "realmhook:", describe(err))
		_ = m.Close()
		os.Exit(1)
	}
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "realmhook:", err)
		os.Exit(1)
	}
}

// Main is the program: ParseFlags, Run, Close. Tests run it in-process.
type Main struct {
	ConfigPath string
	Config     *config.Config
	Stdout     io.Writer
	Stderr     io.Writer

	// Addr is the address the server listens on once Run has returned.
	Addr string
	// InternalAddr is the internal API's address (internal.listen), if any.
	InternalAddr string
	// AdminAddr is the admin API's address once Run has returned; "" when
	// admin.listen is not set.
	AdminAddr string
	// EgressAddr is where the egress listener (gateway.egressListen)
	// listens once Run has returned; "" without one.
	EgressAddr string

	logger     *slog.Logger
	server     *server.Server
	httpServer *http.Server
	// internalServer serves the internal API, when internal.listen is set.
	internalServer *http.Server
	// adminServer serves admin.listen; nil when it is not set.
	adminServer *http.Server
	// egress serves the app's door to the product, with gateway.egressListen.
	egress *http.Server
	// running is how many goroutines report on done when they stop.
	running int
	cancel  context.CancelFunc
	done    chan struct{}
	failed  chan error
}

// Failed delivers the error that stopped the HTTP server, if it stops by
// itself; main then exits instead of waiting for a signal.
func (m *Main) Failed() <-chan error { return m.failed }

// fail reports the first failure of the HTTP server or the engine; a second
// one finds the process already on its way out.
func (m *Main) fail(err error) {
	select {
	case m.failed <- err:
	default:
	}
}

// NewMain returns a Main writing to the process's stdout and stderr.
func NewMain() *Main { return &Main{Stdout: os.Stdout, Stderr: os.Stderr} }

const usage = `usage: realmhook serve [--config FILE] [--install-keys URL]
       realmhook version

With no --config, realmhook serves the embedded shape: realms global, US and EU,
each a SQLite database under ./data, at http://localhost:8080.`

// ErrPrinted is what ParseFlags returns when it printed what was asked for
// (help, the version) and there is nothing to run: the program exits 0.
var ErrPrinted = errors.New("printed help or version")

// ParseFlags reads the command line and the config file.
func (m *Main) ParseFlags(args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			fmt.Fprintln(m.Stdout, usage)
			return ErrPrinted
		case "-version", "--version", "version":
			fmt.Fprintln(m.Stdout, "realmhook", realmhook.Version())
			return ErrPrinted
		}
	}
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(m.Stderr, usage)
		return fmt.Errorf("unknown command %q; want serve", strings.Join(args, " "))
	}
	fs := flag.NewFlagSet("realmhook serve", flag.ContinueOnError)
	// The flag package prints the usage both when asked (-h) and on a bad
	// flag; only the second is a complaint, so which stream gets it is
	// decided after Parse.
	var flagOut bytes.Buffer
	fs.SetOutput(&flagOut)
	fs.StringVar(&m.ConfigPath, "config", "", "YAML config `file` (default: the embedded shape)")
	installKeys := fs.String("install-keys", "", "signed-install key server `URL`, overriding installKeys.url (e.g. realmctl host keys)")
	if err := fs.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
		_, _ = flagOut.WriteTo(m.Stdout)
		return ErrPrinted
	} else if err != nil {
		_, _ = flagOut.WriteTo(m.Stderr)
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg := config.Default()
	if m.ConfigPath != "" {
		var err error
		if cfg, err = config.Load(m.ConfigPath); err != nil {
			return err
		}
	}
	if *installKeys != "" {
		cfg.InstallKeys.URL = *installKeys
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("--install-keys: %w", err)
		}
	}
	m.Config = cfg
	return nil
}

// Run opens every served realm, starts the migration engine and the HTTP
// server, and returns once the server listens.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config
	m.logger = newLogger(m.Stderr, cfg.Log)

	// Listen before opening the databases: a taken port fails at once, and
	// the banner can name the address before anything is logged.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	m.Addr = ln.Addr().String()
	var iln net.Listener
	if cfg.Internal.Listen != "" {
		if iln, err = net.Listen("tcp", cfg.Internal.Listen); err != nil {
			ln.Close()
			return fmt.Errorf("internal.listen: %w", err)
		}
		m.InternalAddr = iln.Addr().String()
	}
	var adminLn net.Listener
	if cfg.Admin.Listen != "" {
		if adminLn, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
			ln.Close()
			if iln != nil {
				iln.Close()
			}
			return fmt.Errorf("admin.listen: %w", err)
		}
		m.AdminAddr = adminLn.Addr().String()
	}
	closeListeners := func() {
		ln.Close()
		if adminLn != nil {
			adminLn.Close()
		}
		if iln != nil {
			iln.Close()
		}
	}
	m.printBanner(cfg.Realms[realmhook.GlobalRealm].BaseURL)

	m.server, err = server.New(ctx, cfg, server.Options{Logger: m.logger})
	if err != nil {
		closeListeners()
		return err
	}
	// A missing table, column or unique key is found now, before the
	// server listens, not mid-copy with a tenant frozen.
	if err := m.server.CheckTables(ctx); err != nil {
		closeListeners()
		_ = m.server.Close()
		m.server = nil
		return err
	}
	m.httpServer = &http.Server{
		Handler:           hooks.LimitHeaders(m.server.Handler(), cfg.HTTP.MaxHeaderBytes),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		// Go's own limit answers 431 in plain text; set above ours so that
		// LimitHeaders answers in JSON for everything up to it.
		MaxHeaderBytes: hooks.ServerMaxHeaderBytes(cfg.HTTP.MaxHeaderBytes),
	}

	if iln != nil {
		m.internalServer = &http.Server{
			Handler:           m.server.InternalHandler(),
			ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
			IdleTimeout:       cfg.HTTP.IdleTimeout,
			// HTTP/2 without TLS too: a transfer streams rows.
			Protocols: internalProtocols(),
		}
	}

	// The app's door to the product: on its own listener, which the
	// operator keeps off the public network.
	var egressLn net.Listener
	if h := m.server.EgressHandler(); h != nil {
		if egressLn, err = net.Listen("tcp", cfg.Gateway.EgressListen); err != nil {
			ln.Close()
			if iln != nil {
				iln.Close()
			}
			_ = m.server.Close()
			m.server = nil
			return fmt.Errorf("gateway.egressListen: %w", err)
		}
		m.EgressAddr = egressLn.Addr().String()
		m.egress = &http.Server{
			Handler:           hooks.LimitHeaders(h, cfg.HTTP.MaxHeaderBytes),
			ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
			IdleTimeout:       cfg.HTTP.IdleTimeout,
			MaxHeaderBytes:    hooks.ServerMaxHeaderBytes(cfg.HTTP.MaxHeaderBytes),
		}
	}

	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.running = 2
	if m.internalServer != nil {
		m.running++
	}
	if adminLn != nil {
		m.running++
	}
	m.done = make(chan struct{}, m.running)
	m.failed = make(chan error, 1)
	go func() {
		if err := m.server.Run(runCtx); err != nil {
			m.logger.Error("migration engine stopped", slog.String("err", err.Error()))
			// A process serving hooks without its engine would accept
			// migrations it never copies: exit, as for a failed listener.
			m.fail(fmt.Errorf("migration engine: %w", err))
		}
		m.done <- struct{}{}
	}()
	go func() {
		if err := m.httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.logger.Error("http server stopped", slog.String("err", err.Error()))
			m.fail(fmt.Errorf("http server: %w", err))
		}
		m.done <- struct{}{}
	}()

	if m.internalServer != nil {
		go func() {
			var err error
			if cfg.Internal.TLSCert != "" {
				err = m.internalServer.ServeTLS(iln, cfg.Internal.TLSCert, cfg.Internal.TLSKey)
			} else {
				err = m.internalServer.Serve(iln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.logger.Error("internal server stopped", slog.String("err", err.Error()))
				m.fail(fmt.Errorf("internal server: %w", err))
			}
			m.done <- struct{}{}
		}()
		m.logger.Info("realmhook internal API listening", slog.String("addr", m.InternalAddr))
	}
	if adminLn != nil {
		m.adminServer = &http.Server{
			Handler:           m.server.AdminHandler(),
			ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
			ReadTimeout:       cfg.HTTP.ReadTimeout,
			WriteTimeout:      cfg.HTTP.WriteTimeout,
			IdleTimeout:       cfg.HTTP.IdleTimeout,
		}
		go func() {
			if err := m.adminServer.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.logger.Error("admin server stopped", slog.String("err", err.Error()))
				m.fail(fmt.Errorf("admin server: %w", err))
			}
			m.done <- struct{}{}
		}()
		m.logger.Info("admin API listening", slog.String("addr", m.AdminAddr))
	}

	if m.egress != nil {
		go func() {
			if err := m.egress.Serve(egressLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.logger.Error("egress server stopped", slog.String("err", err.Error()))
				m.fail(fmt.Errorf("egress server: %w", err))
			}
		}()
		m.logger.Info("egress listening", slog.String("addr", m.EgressAddr))
	}
	m.logger.Info("realmhook listening", slog.String("addr", m.Addr))
	return nil
}

// internalProtocols are the internal listener's: HTTP/1.1, and HTTP/2
// with or without TLS.
func internalProtocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}

// printBanner tells the operator where everything is. It goes to stderr, in
// one write, before the first log line, so that in a terminal it neither
// mixes with the log lines nor lands between them; it is read from the
// config, as nothing has been opened yet.
func (m *Main) printBanner(globalBaseURL string) {
	var b strings.Builder
	fmt.Fprintf(&b, "realmhook %s on %s\n", realmhook.Version(), m.Addr)
	fmt.Fprintf(&b, "descriptor  %s/atlassian-connect.json\n", globalBaseURL)
	if m.AdminAddr != "" {
		fmt.Fprintf(&b, "admin API   http://%s (realmctl realms --server http://%s)\n", m.AdminAddr, m.AdminAddr)
	}
	served := m.Config.ServedRealms()
	for _, key := range m.Config.RealmKeys() {
		r := m.Config.Realms[key]
		where := "not served by this process"
		if slices.Contains(served, key) {
			where = realms.RedactDatabase(r.Database)
		}
		fmt.Fprintf(&b, "realm %-7s %-40s %s\n", key, r.BaseURL, where)
	}
	_, _ = io.WriteString(m.Stderr, b.String())
}

// Close stops the HTTP server gracefully, then the migration engine (whose
// jobs resume from their checkpoints at the next start), then the databases.
func (m *Main) Close() error {
	var errs []error
	if m.httpServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.httpServer.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	if m.egress != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.egress.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("egress shutdown: %w", err))
		}
	}
	if m.internalServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.internalServer.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("internal shutdown: %w", err))
		}
	}
	if m.adminServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.adminServer.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("admin shutdown: %w", err))
		}
	}
	if m.cancel != nil {
		m.cancel()
		for range m.running {
			<-m.done
		}
	}
	if m.server != nil {
		if err := m.server.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// describe is an error as an operator should read it: a domain error's own
// message, without its code.
func describe(err error) string {
	var e *realmhook.Error
	if errors.As(err, &e) && errors.Unwrap(err) == nil {
		return e.Message
	}
	return err.Error()
}

func newLogger(w io.Writer, cfg config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
