package main

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmhook/realmhook/hostsim/fakeapp"
)

// lockedBuffer lets a command running in a goroutine and the test share output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// mustStartKeyServer runs `realmctl host keys` until the test ends and returns
// the URL it prints.
func mustStartKeyServer(t *testing.T, state string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"host", "keys", "--listen", "127.0.0.1:0", "--state", state}, out, out)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("host keys exited %d: %s", code, out)
		}
		if !strings.Contains(out.String(), "key server stopping") {
			t.Errorf("host keys did not say it stopped: %s", out)
		}
	})
	re := regexp.MustCompile(`installKeys\.url to: (\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("host keys exited %d: %s", code, out)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("host keys printed no URL: %s", out)
	return ""
}

// mustFakeApp serves a fake Connect app trusting keysURL and returns its
// descriptor URL.
func mustFakeApp(t *testing.T, keysURL string, d fakeapp.Defects) (*fakeapp.App, string) {
	t.Helper()
	app := fakeapp.New(keysURL, d)
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return app, srv.URL + "/atlassian-connect.json"
}

func mustInstallCLI(t *testing.T, state, descriptorURL, realm string) string {
	t.Helper()
	r := mustRun(t, "host", "install", "--descriptor", descriptorURL, "--realm", realm, "--state", state)
	if r.code != exitOK {
		t.Fatalf("install exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	m := regexp.MustCompile(`clientKey: (\S+)`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("install printed no clientKey: %s", r.stdout)
	}
	return m[1]
}

func TestHost_Usage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"NoSubcommand", []string{"host"}, exitUsage, "", "which host command?"},
		{"Help", []string{"host", "-h"}, exitOK, "realmctl host conformance --descriptor URL", ""},
		{"Unknown", []string{"host", "frobnicate"}, exitUsage, "", `unknown host command "frobnicate"`},
		{"InstallNeedsDescriptor", []string{"host", "install"}, exitUsage, "", "--descriptor is required"},
		{"CallNeedsMethodAndPath", []string{"host", "call", "--client-key", "k", "GET"}, exitUsage, "", "want 2 to 3 arguments, got 1"},
		{"MigrateNeedsTarget", []string{"host", "migrate", "--client-key", "k"}, exitUsage, "", "--to is required"},
		{"ConformanceBadProbe", []string{"host", "conformance", "--descriptor", "http://x", "--probe", "sql"}, exitUsage, "", "--probe must be none or properties"},
		{"ConformanceKeysTwice", []string{"host", "conformance", "--descriptor", "http://x", "--keys-url", "http://k", "--serve-keys", ":0"}, exitUsage, "", "not both"},
		{"BadFlag", []string{"host", "enable", "--nope"}, exitUsage, "", "flag provided but not defined: -nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if tt.stdout != "" && !strings.Contains(r.stdout, tt.stdout) {
				t.Errorf("stdout %q does not contain %q", r.stdout, tt.stdout)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tt.stderr)
			}
		})
	}
}

func TestHost_InstallCallMigrate(t *testing.T) {
	state := filepath.Join(t.TempDir(), "host.json")
	keysURL := mustStartKeyServer(t, state)
	app, descriptorURL := mustFakeApp(t, keysURL, fakeapp.Defects{})
	key := mustInstallCLI(t, state, descriptorURL, "eu")
	if got := app.TenantRealm(key); got != "EU" {
		t.Fatalf("app has the tenant in %q, want EU", got)
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v, want mode 0600", fi, err)
	}

	steps := []struct {
		name   string
		args   []string
		code   int
		stdout string
	}{
		{"Put", []string{"call", "--client-key", key, "PUT", "/api/v1/properties/p", `{"a":1}`}, exitOK, "204 No Content"},
		{"Get", []string{"call", "--client-key", key, "GET", "/api/v1/properties/p"}, exitOK, "200 OK\n{\"a\":1}\n"},
		{"GetMissingExits1", []string{"call", "--client-key", key, "GET", "/api/v1/properties/nope"}, exitFailure, "404 Not Found"},
		{"Migrate", []string{"migrate", "--client-key", key, "--to", "US", "--poll", "1ms"}, exitOK, "now lives in US"},
		{"GetFollowsTenant", []string{"call", "--client-key", key, "GET", "/api/v1/properties/p"}, exitOK, `{"a":1}`},
		{"OldRealmMisdirected", []string{"call", "--client-key", key, "--realm", "EU", "GET", "/api/v1/properties/p"}, exitFailure, "421"},
		{"Tenants", []string{"tenants"}, exitOK, key + "\tUS\tenabled"},
		{"Disable", []string{"disable", "--client-key", key}, exitOK, "disabled " + key},
		{"Enable", []string{"enable", "--client-key", key}, exitOK, "enabled " + key},
		{"Uninstall", []string{"uninstall", "--client-key", key}, exitOK, "uninstalled " + key},
		{"UnknownTenant", []string{"enable", "--client-key", "nobody"}, exitFailure, ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			// Flags go before call's METHOD PATH, so --state goes first.
			r := mustRun(t, append([]string{"host", s.args[0], "--state", state}, s.args[1:]...)...)
			if r.code != s.code {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", r.code, s.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, s.stdout) {
				t.Fatalf("stdout %q does not contain %q", r.stdout, s.stdout)
			}
		})
	}
	if got := app.TenantRealm(key); got != "US" {
		t.Fatalf("after migrate the app has the tenant in %q, want US", got)
	}
}

func TestHost_MigrateExitCodes(t *testing.T) {
	tests := []struct {
		name    string
		defects fakeapp.Defects
		flags   []string
		code    int
		stderr  string
	}{
		{"FailedMigrationExits1", fakeapp.Defects{FailMigrations: true}, nil, exitFailure, "did not commit"},
		{"RollbackAsked", fakeapp.Defects{}, []string{"--rollback"}, exitOK, ""},
		{"FailedButRollbackAsked", fakeapp.Defects{FailMigrations: true}, []string{"--rollback"}, exitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "host.json")
			keysURL := mustStartKeyServer(t, state)
			app, descriptorURL := mustFakeApp(t, keysURL, tt.defects)
			key := mustInstallCLI(t, state, descriptorURL, "EU")
			args := append([]string{"host", "migrate", "--state", state, "--client-key", key, "--to", "US", "--poll", "1ms", "--retry-delay", "0s"}, tt.flags...)
			r := mustRun(t, args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Fatalf("stderr %q does not contain %q", r.stderr, tt.stderr)
			}
			if app.Calls("rollback") != 1 || app.TenantRealm(key) != "EU" {
				t.Fatalf("rollback calls %d, tenant in %q; want 1 and EU", app.Calls("rollback"), app.TenantRealm(key))
			}
		})
	}
}

func TestHost_Conformance(t *testing.T) {
	t.Run("ConformantWithServedKeysAndJUnit", func(t *testing.T) {
		addr := mustFreeAddr(t)
		_, descriptorURL := mustFakeApp(t, "http://"+addr, fakeapp.Defects{})
		junit := filepath.Join(t.TempDir(), "report.xml")
		r := mustRun(t, "host", "conformance", "--state", filepath.Join(t.TempDir(), "host.json"),
			"--descriptor", descriptorURL, "--serve-keys", addr, "--probe", "properties",
			"--junit", junit, "--attempts", "8", "--poll", "1ms", "--retry-delay", "0s")
		if r.code != exitOK {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, "FAIL ") || !strings.Contains(r.stdout, "PASS migration/commit-moves-tenant") {
			t.Fatalf("stdout:\n%s", r.stdout)
		}
		b, err := os.ReadFile(junit)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`failures="0"`)) || !bytes.Contains(b, []byte(`name="hook/concurrent-limit-E0004"`)) {
			t.Fatalf("junit report:\n%s", b)
		}
	})
	t.Run("BrokenAppExits1", func(t *testing.T) {
		state := filepath.Join(t.TempDir(), "host.json")
		keysURL := mustStartKeyServer(t, state)
		_, descriptorURL := mustFakeApp(t, keysURL, fakeapp.Defects{IgnoreQSH: true})
		r := mustRun(t, "host", "conformance", "--state", state, "--descriptor", descriptorURL,
			"--attempts", "8", "--poll", "1ms", "--retry-delay", "0s")
		if r.code != exitFailure {
			t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", r.code, exitFailure, r.stdout, r.stderr)
		}
		for _, want := range []string{"FAIL auth/bad-qsh-refused — ", "FAIL auth/context-qsh-refused-on-hooks — ", "2 failed"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout does not contain %q:\n%s", want, r.stdout)
			}
		}
	})
}

// mustFreeAddr returns a loopback address nothing listens on right now.
func mustFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
