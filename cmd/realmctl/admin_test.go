package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/config"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/server"
)

const adminToken = "realmctl-test-token-0123"

// adminServer is a real realmhook server (embedded shape, SQLite) with its
// admin API on a test listener; tenants "acme" (active in EU, 4 properties)
// and "beta" (active in US).
type adminServer struct {
	srv *server.Server
	url string
}

func startAdminServer(t *testing.T) *adminServer {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	for key, r := range cfg.Realms {
		r.Database = "sqlite:" + filepath.Join(cfg.DataDir, strings.ToLower(key)+".db")
		cfg.Realms[key] = r
	}
	cfg.Admin = config.Admin{Listen: "127.0.0.1:0", Token: adminToken, ProbeInterval: 50 * time.Millisecond}
	srv, err := server.New(t.Context(), cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); _ = srv.Run(ctx) }()
	hs := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(func() { hs.Close(); cancel(); <-ran; _ = srv.Close() })
	a := &adminServer{srv: srv, url: hs.URL}
	a.mustTenant(t, "EU", "acme", 4)
	a.mustTenant(t, "US", "beta", 1)
	return a
}

func (a *adminServer) mustTenant(t *testing.T, realm, clientKey string, props int) *realmhook.Tenant {
	t.Helper()
	r, _ := a.srv.Realms().Get(realm)
	now := time.Now().UTC()
	tn := &realmhook.Tenant{ClientKey: clientKey, SharedSecret: "s3cret-" + clientKey, BaseURL: "https://" + clientKey + ".atlassian.net",
		State: realmhook.TenantActive, Enabled: true, InstalledAt: now, UpdatedAt: now}
	if err := r.Store.PutTenant(t.Context(), tn); err != nil {
		t.Fatal(err)
	}
	for i := range props {
		if _, err := r.Store.PutProperty(t.Context(), clientKey, "key-"+string(rune('a'+i)), []byte(`true`)); err != nil {
			t.Fatal(err)
		}
	}
	return tn
}

// mustReady schedules and starts a migration and waits until it is ready
// to commit.
func (a *adminServer) mustReady(t *testing.T, realm, clientKey, id, to string) {
	t.Helper()
	r, _ := a.srv.Realms().Get(realm)
	tn, err := r.Store.GetTenant(t.Context(), clientKey)
	if err != nil {
		t.Fatal(err)
	}
	migs := a.srv.Migrations()
	req := migration.Request{MigrationID: id, Location: to, StartTime: time.Now(), EndTime: time.Now().Add(time.Hour)}
	if _, err := migs.Schedule(t.Context(), realm, tn, req); err != nil {
		t.Fatal(err)
	}
	if _, err := migs.Start(t.Context(), realm, tn, req); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := migs.Wait(ctx, realm, clientKey, id, realmhook.MigrationReadyToCommit); err != nil {
		t.Fatal(err)
	}
}

func TestAdminCommands(t *testing.T) {
	a := startAdminServer(t)
	a.mustReady(t, "EU", "acme", "m-7", "US")
	if _, err := a.srv.Migrations().Commit(t.Context(), "EU", "acme", "m-7"); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envAdminURL, a.url)
	t.Setenv(envAdminToken, adminToken)

	tests := []struct {
		name string
		args []string
		code int
		want []string // substrings of stdout
	}{
		{"Realms", []string{"realms"}, exitOK, []string{"REALM", "EU ", "healthy", "moved=1", "active=2", a.srv.Config().Realms["EU"].BaseURL}},
		{"Tenants", []string{"tenants"}, exitOK, []string{"acme", "moved to US", "beta"}},
		{"TenantsByRealmAndState", []string{"tenants", "--realm", "EU", "--state", "moved"}, exitOK, []string{"acme", "EU"}},
		{"Tenant", []string{"tenant", "acme"}, exitOK, []string{"moved to US", "active", "m-7", "committed", "4/4", "100.0%"}},
		{"Migrations", []string{"migrations"}, exitOK, []string{"m-7", "EU", "US", "committed"}},
		{"Migration", []string{"migration", "m-7"}, exitOK, []string{"EVENTS", "- → scheduled", "copying → verifying", "committing → committed"}},
		{"UnknownTenant", []string{"tenant", "nobody"}, exitFailure, nil},
		{"BadState", []string{"tenants", "--realm", "EU", "--state", "asleep"}, exitFailure, nil},
		{"Purge", []string{"purge", "--realm", "EU", "acme"}, exitOK, []string{"purged acme's copy in EU"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}

	t.Run("JSON", func(t *testing.T) {
		for _, args := range [][]string{{"realms"}, {"tenants"}, {"tenant", "beta"}, {"migrations"}, {"migration", "m-7"}} {
			r := mustRun(t, append(args, "--output", "json")...)
			var v map[string]any
			if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &v) != nil || len(v) == 0 {
				t.Errorf("%v --output json: exit %d, stdout %q", args, r.code, r.stdout)
			}
		}
		r := mustRun(t, "tenant", "beta", "--output", "json")
		var got struct {
			Records []struct{ ClientKey, Realm string }
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got.Records) != 1 ||
			got.Records[0].ClientKey != "beta" || got.Records[0].Realm != "US" || strings.Contains(r.stdout, "s3cret") {
			t.Errorf("tenant JSON = %s (%v)", r.stdout, err)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		r := mustRun(t, "realms", "--token", "wrong-wrong-wrong-wrong")
		if r.code != exitFailure || !strings.Contains(r.stderr, "unauthenticated") {
			t.Errorf("wrong token: exit %d, stderr %q", r.code, r.stderr)
		}
		t.Setenv(envAdminURL, "")
		if r := mustRun(t, "realms"); r.code != exitUsage || !strings.Contains(r.stderr, envAdminURL) {
			t.Errorf("no server: exit %d, stderr %q", r.code, r.stderr)
		}
		if r := mustRun(t, "realms", "--server", a.url, "--output", "yaml"); r.code != exitUsage {
			t.Errorf("bad --output: exit %d", r.code)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the watcher's writes and the test's
// reads.
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

func TestMigrationsWatch(t *testing.T) {
	a := startAdminServer(t)
	t.Run("NothingRunning", func(t *testing.T) {
		r := mustRun(t, "migrations", "--watch", "--server", a.url, "--token", adminToken, "--interval", "20ms")
		if r.code != exitOK || !strings.Contains(r.stdout, "no migration is running") {
			t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
		}
	})

	// A migration ready to commit is still running: the bar stays until
	// the commit.
	a.mustReady(t, "EU", "acme", "m-w", "US")
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(t.Context(), []string{"migrations", "--watch", "--server", a.url, "--token", adminToken, "--interval", "20ms"}, &out, &errOut)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "ready-to-commit") {
		if time.Now().After(deadline) {
			t.Fatalf("no bar for the running migration; output %q, stderr %q", out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := a.srv.Migrations().Commit(t.Context(), "EU", "acme", "m-w"); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		got := out.String()
		if code != exitOK {
			t.Fatalf("watch exit %d, stderr %q", code, errOut.String())
		}
		for _, w := range []string{"m-w EU→US", "4/4 rows", "100 %", "rows/s", "no migration is running any more"} {
			if !strings.Contains(got, w) {
				t.Errorf("watch output lacks %q:\n%s", w, got)
			}
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("watch did not end after the commit; output %q", out.String())
	}
}

func TestRehearse(t *testing.T) {
	a := startAdminServer(t)
	t.Setenv(envAdminURL, a.url)
	t.Setenv(envAdminToken, adminToken)
	r := mustRun(t, "rehearse", "acme", "--to", "US", "--window", "1h30m", "--interval", "20ms")
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	for _, w := range []string{"rehearsing acme EU → US", "4/4 rows", "passed: 4 rows in", "fits the 1h30m0s window", "verified 4 rows"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
		}
	}
	us, _ := a.srv.Realms().Get("US")
	if _, err := us.Store.GetTenant(t.Context(), "acme"); realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
		t.Errorf("the target holds the tenant after the rehearsal: %v", err)
	}

	j := mustRun(t, "rehearse", "acme", "--to", "US", "--output", "json", "--interval", "20ms")
	var got struct {
		State    string
		Verified bool
	}
	if j.code != exitOK || json.Unmarshal([]byte(j.stdout), &got) != nil || got.State != "passed" || !got.Verified {
		t.Errorf("--output json: exit %d, %q", j.code, j.stdout)
	}
	if r := mustRun(t, "rehearse", "acme"); r.code != exitUsage {
		t.Errorf("without --to: exit %d", r.code)
	}
	if r := mustRun(t, "rehearse", "acme", "--to", "EU"); r.code != exitFailure || !strings.Contains(r.stderr, "own realm") {
		t.Errorf("to its own realm: exit %d, stderr %q", r.code, r.stderr)
	}
}
