package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/integration/pgtest"
)

// binDir holds the binaries TestMain builds once for every test.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "realmhook-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "../cmd/realmhook", "../cmd/realmctl")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build binaries:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := pgtest.Shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "stop PostgreSQL:", err)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// keyServer plays the host's signed-install key server.
type keyServer struct {
	URL string
	Kid string
	Key *rsa.PrivateKey
}

func mustKeyServer(t testing.TB) *keyServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := connectjwt.EncodePublicKeyPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ks := &keyServer{Kid: "test-key-1", Key: key}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+ks.Kid {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(pemBytes)
	}))
	t.Cleanup(srv.Close)
	ks.URL = srv.URL
	return ks
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// server is one running realmhook process.
type server struct {
	t       testing.TB
	Base    string // global base URL
	Dir     string
	cfgPath string
	cmd     *exec.Cmd
	out     *syncBuffer
	// Env is added to the process's environment at each start (the crash
	// suite's migration.PauseEnv); a test may change it between restarts.
	Env    []string
	exited chan struct{}
	// RealmURLs, when set, are the realms' base URLs (the regional shape,
	// where each realm is its own process); else realms nest under Base.
	RealmURLs map[string]string
}

// syncBuffer collects a process's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testSecretKey seals tenants' shared secrets in every test server unless a
// test's Extra sets secrets itself: base64 of 32 bytes.
const testSecretKey = "cmVhbG1ob29rLWludGVncmF0aW9uLXRlc3Qta2V5ISE="

// serverConfig is what a test varies in the config file.
type serverConfig struct {
	KeysURL string
	// Databases by realm key; empty means sqlite files in the server's dir.
	Databases map[string]string
	Extra     string // appended YAML (migration, tables…)
	Serve     []string
	// Upstreams by realm key: realms.<KEY>.upstream (the gateway's app).
	Upstreams map[string]string
	// Env is the server's Env at its first start.
	Env []string
}

// mustStartServer writes a config and starts realmhook on a free port with
// realms global, US and EU, and waits until it is ready.
func mustStartServer(t testing.TB, sc serverConfig) *server {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	db := func(key, file string) string {
		if d, ok := sc.Databases[key]; ok {
			return d
		}
		return "sqlite:" + filepath.Join(dir, file)
	}
	upstream := func(key string) string {
		if u, ok := sc.Upstreams[key]; ok {
			return "\n    upstream: " + u
		}
		return ""
	}
	cfg := fmt.Sprintf(`listen: 127.0.0.1:%d
installKeys:
  url: %s
  timeout: 2s
jwt:
  leeway: 5s
log:
  level: debug
realms:
  global:
    baseUrl: %s
    database: %s%s
  US:
    baseUrl: %s/realms/us
    database: %s%s
  EU:
    baseUrl: %s/realms/eu
    database: %s%s
`, port, sc.KeysURL, base, db("global", "global.db"), upstream("global"), base, db("US", "us.db"), upstream("US"), base, db("EU", "eu.db"), upstream("EU"))
	if len(sc.Serve) > 0 {
		cfg += "serve: [" + strings.Join(sc.Serve, ", ") + "]\n"
	}
	if !strings.Contains(sc.Extra, "secrets:") {
		// Every test server seals secrets, as a PostgreSQL realm must.
		cfg += "secrets:\n  keys: [\"" + testSecretKey + "\"]\n"
	}
	cfg += sc.Extra
	cfgPath := filepath.Join(dir, "realmhook.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, Base: base, Dir: dir, cfgPath: cfgPath, Env: sc.Env}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	t := s.t
	t.Helper()
	s.out = &syncBuffer{}
	s.cmd = exec.Command(filepath.Join(binDir, "realmhook"), "serve", "--config", s.cfgPath)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.Dir = s.Dir
	if len(s.Env) > 0 {
		s.cmd.Env = append(os.Environ(), s.Env...)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-s.exited:
			t.Fatalf("realmhook exited before it was ready:\n%s", s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("realmhook not ready after 30s:\n%s", s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops the server with SIGKILL: no shutdown code runs.
func (s *server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// restart starts the server again on the same config and databases.
func (s *server) restart() { s.start() }

func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	if s.t.Failed() {
		s.t.Logf("realmhook output:\n%s", s.out.String())
	}
}

// Output is what the server printed so far.
func (s *server) Output() string { return s.out.String() }

// realmURL is a realm's base URL on this server.
func (s *server) realmURL(realm string) string {
	if u, ok := s.RealmURLs[realm]; ok {
		return u
	}
	switch realm {
	case "global":
		return s.Base
	default:
		return s.Base + "/realms/" + strings.ToLower(realm)
	}
}

// tenant is a host-side view of one installation.
type tenant struct {
	ClientKey string
	Secret    string
}

func newTenant(t testing.TB) tenant {
	var b [16]byte
	_, _ = rand.Read(b[:])
	var s [32]byte
	_, _ = rand.Read(s[:])
	return tenant{ClientKey: "client-" + hex.EncodeToString(b[:6]), Secret: hex.EncodeToString(s[:])}
}

// response is a decoded HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %v\n%s", r.Status, err, r.Body)
	}
	return m
}

func do(t testing.TB, method, url string, header http.Header, body []byte) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// installBody is what the host posts to installed/uninstalled.
func installBody(ten tenant, event string) []byte {
	b, _ := json.Marshal(map[string]any{
		"key":          "com.example.realmhook-app",
		"clientKey":    ten.ClientKey,
		"sharedSecret": ten.Secret,
		"baseUrl":      "https://" + ten.ClientKey + ".atlassian.net",
		"displayUrl":   "https://" + ten.ClientKey + ".atlassian.net",
		"productType":  "jira",
		"description":  "test site",
		"eventType":    event,
	})
	return b
}

// mustInstall sends a genuinely RS256-signed installed hook to a realm.
func mustInstall(t testing.TB, s *server, ks *keyServer, ten tenant, realm string) {
	t.Helper()
	r := signedInstall(t, s, ks, ten, realm, "installed")
	if r.Status != http.StatusNoContent && r.Status != http.StatusOK {
		t.Fatalf("install %s into %s: %d %s", ten.ClientKey, realm, r.Status, r.Body)
	}
}

func signedInstall(t testing.TB, s *server, ks *keyServer, ten tenant, realm, event string) response {
	t.Helper()
	base := s.realmURL(realm)
	url := base + "/" + event
	tok, err := connectjwt.Signer{}.RS256(ks.Key, ks.Kid, ten.ClientKey, base, http.MethodPost, url, base)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, http.MethodPost, url, http.Header{"Authorization": {"JWT " + tok}}, installBody(ten, event))
}

// call signs a request as the tenant (HS256, qsh for the URL) to a realm.
func call(t testing.TB, s *server, ten tenant, realm, method, path string, body []byte) response {
	t.Helper()
	base := s.realmURL(realm)
	url := base + path
	tok, err := connectjwt.Signer{}.HS256([]byte(ten.Secret), ten.ClientKey, method, url, base)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, method, url, http.Header{"Authorization": {"JWT " + tok}}, body)
}

// mustStatus fails unless the response has the wanted status.
func mustStatus(t testing.TB, r response, want int, what string) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, want, r.Body)
	}
}

// waitFor polls fn until it returns true or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
