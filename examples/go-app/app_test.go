package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmhook/realmhook/hostsim"
	"github.com/realmhook/realmhook/server"
)

// runningApp is the example app serving on a loopback port, with the host
// emulator's key server trusted for signed installs.
type runningApp struct {
	base string
	rh   *server.Server
	host *hostsim.Host
}

func mustStartApp(t *testing.T) *runningApp {
	t.Helper()
	host := hostsim.New()
	host.Out = io.Discard
	keys := httptest.NewServer(host.KeyServer())
	t.Cleanup(keys.Close)
	host.KeysURL = keys.URL

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`listen: %s
installKeys:
  url: %s
log:
  level: warn
realms:
  global:
    baseUrl: %s
    database: sqlite:%s
  US:
    baseUrl: %s/realms/us
    database: sqlite:%s
  EU:
    baseUrl: %s/realms/eu
    database: sqlite:%s
tables:
  - name: notes
    tenantColumn: tenant
    key: [id]
`, ln.Addr(), keys.URL, base, filepath.Join(dir, "global.db"), base, filepath.Join(dir, "us.db"), base, filepath.Join(dir, "eu.db"))
	path := filepath.Join(dir, "realmhook.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rh, err := server.Load(ctx, path, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := newHandler(ctx, rh)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = srv.Serve(ln) }()
	go func() { defer wg.Done(); _ = rh.Run(ctx) }()
	t.Cleanup(func() {
		_ = srv.Close()
		cancel()
		wg.Wait()
		_ = rh.Close()
	})
	return &runningApp{base: base, rh: rh, host: host}
}

func mustCall(t *testing.T, a *runningApp, clientKey, realm, method, path, body string) *hostsim.Response {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	resp, err := a.host.CallRealm(context.Background(), clientKey, realm, method, path, b)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func mustStatus(t *testing.T, resp *hostsim.Response, want int, what string) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: %s, want %d", what, resp.Summary(), want)
	}
}

// TestGoApp_NotesMoveWithTheTenant: install a tenant into EU, write notes
// through the app, migrate the tenant to US with the host emulator (a write
// during the copy is refused with 409), and read the same notes from US;
// EU then sends the tenant to US with 421.
func TestGoApp_NotesMoveWithTheTenant(t *testing.T) {
	a := mustStartApp(t)
	ctx := context.Background()
	ten, err := a.host.Install(ctx, hostsim.InstallOptions{DescriptorURL: a.base + "/atlassian-connect.json", Realm: "EU"})
	if err != nil {
		t.Fatal(err)
	}
	key := ten.ClientKey

	mustStatus(t, mustCall(t, a, key, "EU", http.MethodPut, "/notes/n1", `{"body":"hello from EU"}`), http.StatusOK, "write a note in EU")
	mustStatus(t, mustCall(t, a, key, "EU", http.MethodPut, "/notes/n2", `{"body":"second"}`), http.StatusOK, "write another note in EU")
	page := mustCall(t, a, key, "EU", http.MethodGet, "/notes-page", "")
	mustStatus(t, page, http.StatusOK, "the page in EU")
	if !strings.Contains(string(page.Body), "Kept in realm EU") || !strings.Contains(string(page.Body), "n2") {
		t.Fatalf("page in EU: %s", page.Body)
	}
	mustStatus(t, mustCall(t, a, key, "US", http.MethodGet, "/notes/n1", ""), http.StatusMisdirectedRequest, "read from US before the migration")

	// Every /status poll comes after /start and before /commit, while the
	// tenant is frozen: the first one tries a write first.
	var duringCopy *hostsim.Response
	a.host.Client = &http.Client{Transport: beforeStatus(func() {
		if duringCopy == nil {
			duringCopy = mustCall(t, a, key, "EU", http.MethodPut, "/notes/n3", `{"body":"during the copy"}`)
		}
	})}
	res, err := a.host.Migrate(ctx, hostsim.MigrateOptions{ClientKey: key, To: "US", Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != hostsim.OutcomeCommitted {
		t.Fatalf("migration %s: %s", res.Outcome, res.Reason)
	}
	if duringCopy == nil {
		t.Fatal("the host never polled /status, so no write was tried during the copy")
	}
	mustStatus(t, duringCopy, http.StatusConflict, "write during the copy")

	got := mustCall(t, a, key, "US", http.MethodGet, "/notes/n1", "")
	mustStatus(t, got, http.StatusOK, "read the note from US")
	var n note
	if err := json.Unmarshal(got.Body, &n); err != nil || n.Body != "hello from EU" {
		t.Fatalf("note from US: %s (%v)", got.Body, err)
	}
	if realm := got.Header.Get("X-Realm"); realm != "US" {
		t.Fatalf("X-Realm %q, want US", realm)
	}
	if got.Header.Get("X-Request-Id") == "" {
		t.Fatal("an app route's answer has no X-Request-Id: the middleware does not instrument it")
	}
	mustStatus(t, mustCall(t, a, key, "US", http.MethodGet, "/notes/n3", ""), http.StatusNotFound, "the note refused during the copy")
	mustStatus(t, mustCall(t, a, key, "EU", http.MethodGet, "/notes/n1", ""), http.StatusMisdirectedRequest, "read from EU after the migration")
	mustStatus(t, mustCall(t, a, key, "US", http.MethodPut, "/notes/n4", `{"body":"written in US"}`), http.StatusOK, "write in US after the migration")

	// The rows themselves are in US's database.
	us, _ := a.rh.Realms().Get("US")
	db, err := us.SQLDB()
	if err != nil {
		t.Fatal(err)
	}
	var count int
	if err := db.QueryRow(`SELECT COUNT(*) FROM notes WHERE tenant = $1`, key).Scan(&count); err != nil || count != 3 {
		t.Fatalf("notes of the tenant in US's database: %d (%v), want 3", count, err)
	}
}

// TestGoApp_RefusesBadTokens: the middleware answers for the app.
func TestGoApp_RefusesBadTokens(t *testing.T) {
	a := mustStartApp(t)
	resp, err := http.Get(a.base + "/realms/eu/notes/n1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, a.base+"/realms/eu/notes/n1", nil)
	req.Header.Set("Authorization", "JWT not.a.token")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("malformed token: %d, want 401", resp.StatusCode)
	}
}

// beforeStatus is a transport that calls fn before it sends a /status poll.
type beforeStatus func()

func (fn beforeStatus) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/dare-migration/status") {
		fn()
	}
	return http.DefaultTransport.RoundTrip(r)
}
