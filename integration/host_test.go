package integration

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/realmhook/realmhook/hostsim/fakeapp"
)

// realmctl runs the real realmctl binary and returns its output and exit code.
func realmctl(t testing.TB, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "realmctl"), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if exitErr, ok := err.(*exec.ExitError); ok {
		return out.String(), exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("realmctl %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), 0
}

func mustRealmctl(t testing.TB, args ...string) string {
	t.Helper()
	out, code := realmctl(t, args...)
	if code != 0 {
		t.Fatalf("realmctl %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// mustHostKeys runs `realmctl host keys` as its own process, the way a partner
// would in a second terminal, and returns its URL.
func mustHostKeys(t testing.TB, state string) string {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cmd := exec.Command(filepath.Join(binDir, "realmctl"), "host", "keys", "--listen", strings.TrimPrefix(url, "http://"), "--state", state)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	waitFor(t, 15*time.Second, "realmctl host keys to serve", func() bool {
		resp, err := http.Get(url + "/no-such-kid")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNotFound && strings.Contains(out.String(), url)
	})
	return url
}

// TestHost_QuickstartThroughRealmctl is the README's quickstart, run by the
// real binaries: install a tenant into EU, write data, migrate it to US, and
// read it back from US.
func TestHost_QuickstartThroughRealmctl(t *testing.T) {
	state := filepath.Join(t.TempDir(), "host.json")
	keysURL := mustHostKeys(t, state)
	s := mustStartServer(t, serverConfig{KeysURL: keysURL})
	desc := s.Base + "/atlassian-connect.json"

	mustRealmctl(t, "host", "install", "--state", state, "--descriptor", desc, "--realm", "EU", "--client-key", "demo")
	mustRealmctl(t, "host", "call", "--state", state, "--client-key", "demo", "PUT", "/api/v1/properties/greeting", `{"hello":"world"}`)
	out := mustRealmctl(t, "host", "migrate", "--state", state, "--client-key", "demo", "--to", "US", "--poll", "100ms")
	if !strings.Contains(out, "ready-to-commit") || !strings.Contains(out, "commit") {
		t.Fatalf("migrate output lacks the lifecycle:\n%s", out)
	}
	out = mustRealmctl(t, "host", "call", "--state", state, "--client-key", "demo", "GET", "/api/v1/properties/greeting")
	if !strings.Contains(out, `"hello":"world"`) || !strings.Contains(out, "X-Realm: US\n") {
		t.Fatalf("read after migration, want the data and X-Realm: US:\n%s", out)
	}
	// The data now lives in US only: EU answers 421, and realmctl says so with exit 1.
	out, code := realmctl(t, "host", "call", "--state", state, "--client-key", "demo", "--realm", "EU", "GET", "/api/v1/properties/greeting")
	if code != 1 || !strings.Contains(out, "421") || !strings.Contains(out, "X-Realm: EU\n") {
		t.Fatalf("call at EU after migration: exit %d\n%s", code, out)
	}
	out, code = realmctl(t, "host", "migrate", "--state", state, "--client-key", "demo", "--to", "ZZ", "--poll", "100ms", "--retry-delay", "10ms")
	if code == 0 || !strings.Contains(out, "E0002") {
		t.Fatalf("migrate to an unknown realm: exit %d\n%s", code, out)
	}
	out = mustRealmctl(t, "host", "migrate", "--state", state, "--client-key", "demo", "--to", "EU", "--poll", "100ms", "--rollback")
	if !strings.Contains(out, "rollback") {
		t.Fatalf("migrate --rollback output:\n%s", out)
	}
	out = mustRealmctl(t, "host", "call", "--state", state, "--client-key", "demo", "GET", "/api/v1/properties/greeting")
	if !strings.Contains(out, `"hello":"world"`) {
		t.Fatalf("read after rollback:\n%s", out)
	}
}

// junitReport is the part of a JUnit file the test reads.
type junitReport struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Cases    []struct {
		Name    string    `xml:"name,attr"`
		Failure *struct{} `xml:"failure"`
	} `xml:"testcase"`
}

func mustJUnit(t testing.TB, path string) junitReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Suites []junitReport `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &r); err != nil || len(r.Suites) != 1 {
		t.Fatalf("junit report: want one testsuite in testsuites (%v):\n%s", err, b)
	}
	return r.Suites[0]
}

// TestHost_ConformanceAgainstRealmhook: realmhook passes every check.
func TestHost_ConformanceAgainstRealmhook(t *testing.T) {
	state := filepath.Join(t.TempDir(), "host.json")
	keysURL := mustHostKeys(t, state)
	s := mustStartServer(t, serverConfig{KeysURL: keysURL, Extra: "migration:\n  maxConcurrent: 3\n"})
	junit := filepath.Join(t.TempDir(), "report.xml")
	out, code := realmctl(t, "host", "conformance", "--state", state, "--descriptor", s.Base+"/atlassian-connect.json",
		"--probe", "properties", "--junit", junit, "--poll", "100ms", "--retry-delay", "10ms")
	if code != 0 || strings.Contains(out, "FAIL") {
		t.Fatalf("conformance against realmhook: exit %d\n%s", code, out)
	}
	r := mustJUnit(t, junit)
	if r.Tests < 20 || r.Failures != 0 {
		t.Fatalf("junit: %d tests, %d failures", r.Tests, r.Failures)
	}
}

// TestHost_ConformanceCatchesBrokenApp runs the same report against an app
// that ignores qsh: exactly the qsh checks fail, and realmctl exits 1.
func TestHost_ConformanceCatchesBrokenApp(t *testing.T) {
	state := filepath.Join(t.TempDir(), "host.json")
	keysURL := mustHostKeys(t, state)
	app := httptest.NewServer(fakeapp.New(keysURL, fakeapp.Defects{IgnoreQSH: true}))
	t.Cleanup(app.Close)
	junit := filepath.Join(t.TempDir(), "report.xml")
	out, code := realmctl(t, "host", "conformance", "--state", state, "--descriptor", app.URL+"/atlassian-connect.json",
		"--junit", junit, "--poll", "10ms", "--retry-delay", "10ms")
	if code != 1 {
		t.Fatalf("conformance against a broken app: exit %d, want 1\n%s", code, out)
	}
	failed := map[string]bool{}
	for _, c := range mustJUnit(t, junit).Cases {
		if c.Failure != nil {
			failed[c.Name] = true
		}
	}
	want := []string{"auth/bad-qsh-refused", "auth/context-qsh-refused-on-hooks"}
	for _, name := range want {
		if !failed[name] {
			t.Errorf("check %s did not fail; output:\n%s", name, out)
		}
	}
	if len(failed) != len(want) {
		t.Errorf("failed checks %v, want exactly %v", failed, want)
	}
}
