package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/sqlite"
)

// The routes every server answers, below the EU realm's base path.
const (
	euPath   = "/realms/eu"
	readKey  = "k"
	writeKey = "w"
)

// readValue is the JSON every tenant's readKey holds.
var readValue = []byte(`{"greeting":"hello","n":1}`)

// benchTenant is one installation. Secrets are derived from the client key so
// that the load generator and every server agree without sharing a file.
type benchTenant struct {
	ClientKey string
	Secret    []byte
}

func benchTenants(n int) []benchTenant {
	out := make([]benchTenant, n)
	for i := range out {
		key := fmt.Sprintf("bench-tenant-%07d", i)
		sum := sha256.Sum256([]byte("realmhook routed bench secret/" + key))
		out[i] = benchTenant{ClientKey: key, Secret: []byte(hex.EncodeToString(sum[:]))}
	}
	return out
}

// bareHandler answers the property route from memory without looking at the
// request: the ceiling net/http sets on this machine.
func bareHandler() http.Handler {
	body, _ := json.Marshal(map[string]any{"key": readKey, "value": json.RawMessage(readValue)})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			b, _ := io.ReadAll(r.Body)
			out, _ := json.Marshal(map[string]any{"key": writeKey, "value": json.RawMessage(b)})
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(out)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// carefulTenant is what the careful handler keeps per tenant.
type carefulTenant struct {
	secret []byte
	mu     sync.Mutex
	props  map[string][]byte
}

// carefulHandler is what a careful engineer would write by hand for one
// realm: golang-jwt with the algorithm pinned to HS256, exp required, iat
// checked, qsh checked against the canonical request, tenants and their
// properties in a map in memory.
func carefulHandler(n int) http.Handler {
	tenants := make(map[string]*carefulTenant, n)
	for _, t := range benchTenants(n) {
		tenants[t.ClientKey] = &carefulTenant{secret: t.Secret, props: map[string][]byte{readKey: readValue}}
	}
	type claims struct {
		jwt.RegisteredClaims
		QSH string `json:"qsh"`
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithLeeway(5*time.Second))
	fail := func(w http.ResponseWriter, status int, code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, `{"error":%q}`, code)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.URL.Path, euPath+"/api/v1/properties/")
		if !ok || key == "" {
			fail(w, http.StatusNotFound, "not_found")
			return
		}
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "JWT ")
		if !ok {
			fail(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		var c claims
		var ten *carefulTenant
		_, err := parser.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) {
			ten = tenants[c.Issuer]
			if ten == nil {
				return nil, fmt.Errorf("unknown tenant")
			}
			return ten.secret, nil
		})
		if err != nil || c.QSH != connectjwt.RequestQSH(r, euPath) {
			fail(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		switch r.Method {
		case http.MethodGet:
			ten.mu.Lock()
			v, ok := ten.props[key]
			ten.mu.Unlock()
			if !ok {
				fail(w, http.StatusNotFound, "not_found")
				return
			}
			out, _ := json.Marshal(map[string]any{"key": key, "value": json.RawMessage(v)})
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(out)
		case http.MethodPut:
			v, err := io.ReadAll(io.LimitReader(r.Body, realmhook.MaxPropertyValueBytes+1))
			if err != nil || len(v) > realmhook.MaxPropertyValueBytes || !json.Valid(v) {
				fail(w, http.StatusBadRequest, "invalid")
				return
			}
			ten.mu.Lock()
			_, existed := ten.props[key]
			ten.props[key] = v
			ten.mu.Unlock()
			out, _ := json.Marshal(map[string]any{"key": key, "value": json.RawMessage(v)})
			w.Header().Set("Content-Type", "application/json")
			if !existed {
				w.WriteHeader(http.StatusCreated)
			}
			_, _ = w.Write(out)
		default:
			fail(w, http.StatusMethodNotAllowed, "method_not_allowed")
		}
	})
}

// serveChild runs a baseline server in this process (the -serve child mode)
// and prints the address it listens on as its first line.
func serveChild(kind string, tenants int, stdout io.Writer) error {
	var h http.Handler
	switch kind {
	case "bare":
		h = bareHandler()
	case "careful":
		h = carefulHandler(tenants)
	default:
		return fmt.Errorf("-serve %q: want bare or careful", kind)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}

// process is a server running in a child process.
type process struct {
	name string
	cmd  *exec.Cmd
	base string // EU realm base URL
	root string // the server's root URL (realmhook only)
}

func (p *process) stop() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	}
}

// cpuTime is the CPU time (user and system) the child has used so far.
func (p *process) cpuTime() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat's times.
const clockTicks = 100

// selfCPU is the CPU time this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssBytes is the child's resident set size now.
func (p *process) rssBytes() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// startBaseline re-executes this binary as a -serve child.
func startBaseline(ctx context.Context, self, kind string, tenants int) (*process, error) {
	cmd := exec.CommandContext(ctx, self, "-serve", kind, "-serve-tenants", strconv.Itoa(tenants))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s child: %w", kind, err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening "))
	return &process{name: kind, cmd: cmd, base: "http://" + addr + euPath}, nil
}

// seedRealm writes n tenants, each with readKey set, into a fresh EU database
// before realmhook opens it: installing 100,000 tenants through the signed
// install would measure the install, not the routed request.
func seedRealm(ctx context.Context, path string, tenants []benchTenant) error {
	st, err := sqlite.Open(ctx, path, sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer st.Close()
	return seedStore(ctx, st, tenants)
}

// seedStore writes tenants, each with readKey set, into st.
func seedStore(ctx context.Context, st store.Store, tenants []benchTenant) error {
	now := time.Now().UTC()
	for _, t := range tenants {
		err := st.PutTenant(ctx, &realmhook.Tenant{
			ClientKey: t.ClientKey, SharedSecret: string(t.Secret), BaseURL: tenantBaseURL(t.ClientKey),
			ProductType: "jira", AppKey: appKey, State: realmhook.TenantActive, Enabled: true,
			InstalledAt: now, UpdatedAt: now,
		})
		if err != nil {
			return fmt.Errorf("seed %s: %w", t.ClientKey, err)
		}
	}
	i := 0
	_, err := st.CopyRows(ctx, store.PropertiesTable, []string{"client_key", "key", "value"}, func() ([]store.Row, error) {
		var batch []store.Row
		for ; i < len(tenants) && len(batch) < 5000; i++ {
			batch = append(batch, store.Row{tenants[i].ClientKey, readKey, string(readValue)})
		}
		return batch, nil
	})
	return err
}

// appKey is the app key of the repository's descriptor, which realmhook serves.
const appKey = "com.example.realmhook-app"

// tenantBaseURL is the host product's URL of a bench tenant.
func tenantBaseURL(clientKey string) string { return "https://" + clientKey + ".example.net" }

// startRealmhook seeds a data directory with n tenants in EU and starts the
// realmhook binary on it (embedded shape: global, US, EU on SQLite).
func startRealmhook(ctx context.Context, bin, dir string, n int, logLevel string) (*process, []benchTenant, error) {
	return startRealmhookWith(ctx, bin, dir, n, logLevel, "")
}

// startRealmhookWith is startRealmhook with extra appended to the config.
func startRealmhookWith(ctx context.Context, bin, dir string, n int, logLevel, extra string) (*process, []benchTenant, error) {
	tenants := benchTenants(n)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, err
	}
	if err := seedRealm(ctx, filepath.Join(dir, "eu.db"), tenants); err != nil {
		return nil, nil, err
	}
	p, err := runRealmhook(ctx, bin, dir, rhConfig{LogLevel: logLevel, Databases: map[string]string{
		"global": "sqlite:" + filepath.Join(dir, "global.db"),
		"US":     "sqlite:" + filepath.Join(dir, "us.db"),
		"EU":     "sqlite:" + filepath.Join(dir, "eu.db"),
	}, Extra: extra})
	if err != nil {
		return nil, nil, err
	}
	return p, tenants, nil
}

// rhConfig is what a bench varies in realmhook's configuration.
type rhConfig struct {
	LogLevel string
	// Databases by realm key: global, US and EU.
	Databases map[string]string
	// Extra is YAML appended to the file (top-level keys).
	Extra string
}

// freePort is a loopback port nothing listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// runRealmhook writes a configuration into dir and starts the realmhook
// binary on it, its log in dir/realmhook.log; it returns once /readyz says
// ready. The EU realm is served at euPath, US at /realms/us.
func runRealmhook(ctx context.Context, bin, dir string, c rhConfig) (*process, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`listen: 127.0.0.1:%d
log:
  level: %s
realms:
  global:
    baseUrl: %s
    database: %q
  US:
    baseUrl: %s/realms/us
    database: %q
  EU:
    baseUrl: %s%s
    database: %q
%s`, port, c.LogLevel, base, c.Databases["global"], base, c.Databases["US"], base, euPath, c.Databases["EU"], c.Extra)
	cfgPath := filepath.Join(dir, "realmhook.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "serve", "--config", cfgPath)
	cmd.Dir = dir
	logFile, err := os.Create(filepath.Join(dir, "realmhook.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{name: "realmhook", cmd: cmd, base: base + euPath, root: base}
	if err := waitReady(ctx, base+"/readyz", 60*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("realmhook: %w; see %s", err, logFile.Name())
	}
	return p, nil
}

// waitReady polls url until it answers 200.
func waitReady(ctx context.Context, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s", within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
