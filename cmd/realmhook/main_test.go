package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/config"

	_ "modernc.org/sqlite"
)

func mustConfigFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "realmhook.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMain_BadConfigNamesTheKey: start-up with bad config fails with one line
// naming the key.
func TestMain_BadConfigNamesTheKey(t *testing.T) {
	tests := []struct {
		name, config, wantKey string
	}{
		{"UnknownKey", "listen: 127.0.0.1:0\nlistne: x\nrealms:\n  global: {baseUrl: http://h}\n", "listne"},
		{"UnknownRealmKey", "realms:\n  global: {baseUrl: http://h}\n  eu: {baseUrl: http://h/eu}\n", "realms.eu"},
		{"MissingGlobal", "realms:\n  EU: {baseUrl: http://h/eu}\n", "realms.global"},
		{"DuplicateBaseURL", "realms:\n  global: {baseUrl: http://h}\n  EU: {baseUrl: http://h/}\n", "realms.EU.baseUrl"},
		{"OverlappingBaseURL", "realms:\n  global: {baseUrl: http://h}\n  EU: {baseUrl: http://h/eu}\n  DE: {baseUrl: http://h/eu/de}\n", "baseUrl"},
		{"BadDuration", "jwt: {leeway: banana}\nrealms:\n  global: {baseUrl: http://h}\n", "jwt.leeway"},
		{"BadDatabase", "realms:\n  global: {baseUrl: http://h, database: 'mysql://x'}\n", "realms.global.database"},
		{"ServeUnknownRealm", "serve: [AU]\nrealms:\n  global: {baseUrl: http://h}\n", "serve"},
		{"AdminWithoutToken", "admin: {listen: 127.0.0.1:0}\nrealms:\n  global: {baseUrl: http://h}\n", "admin.token"},
		{"AdminTokenUnset", "admin: {listen: 127.0.0.1:0, token: '${REALMHOOK_TEST_NOT_SET_ANYWHERE}'}\nrealms:\n  global: {baseUrl: http://h}\n", "admin.token"},
		{"UnsetVariable", "realms:\n  global:\n    baseUrl: http://h\n    database: ${REALMHOOK_TEST_NOT_SET_ANYWHERE}\n", "realms.global.database"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &Main{Stdout: io.Discard, Stderr: io.Discard}
			err := m.ParseFlags([]string{"serve", "--config", mustConfigFile(t, tc.config)})
			if err == nil {
				t.Fatal("bad config accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, tc.wantKey) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q: want one line naming %s", msg, tc.wantKey)
			}
		})
	}
}

func TestMain_InstallKeysFlag(t *testing.T) {
	m := &Main{Stdout: io.Discard, Stderr: io.Discard}
	if err := m.ParseFlags([]string{"serve", "--install-keys", "http://127.0.0.1:8941"}); err != nil {
		t.Fatal(err)
	}
	if got := m.Config.InstallKeys.URL; got != "http://127.0.0.1:8941" {
		t.Fatalf("installKeys.url %q", got)
	}
	if len(m.Config.Realms) != 3 {
		t.Fatalf("--install-keys alone should keep the embedded shape, got realms %v", m.Config.Realms)
	}
	err := m.ParseFlags([]string{"serve", "--install-keys", "not a url"})
	if err == nil || !strings.Contains(err.Error(), "installKeys.url") {
		t.Fatalf("bad --install-keys: %v", err)
	}
}

// TestMain_HelpAndVersion: asking for help or the version prints it on
// stdout and is not an error (ErrPrinted: exit 0), for the program and for
// serve.
func TestMain_HelpAndVersion(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "usage: realmhook serve"},
		{[]string{"-h"}, "usage: realmhook serve"},
		{[]string{"help"}, "usage: realmhook serve"},
		{[]string{"serve", "--help"}, "-config file"},
		{[]string{"serve", "-h"}, "-install-keys URL"},
		{[]string{"version"}, "realmhook " + realmhook.Version() + "\n"},
		{[]string{"--version"}, "realmhook " + realmhook.Version() + "\n"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			m := &Main{Stdout: &stdout, Stderr: &stderr}
			if err := m.ParseFlags(tc.args); !errors.Is(err, ErrPrinted) {
				t.Fatalf("ParseFlags(%q) = %v, want ErrPrinted (exit 0)", tc.args, err)
			}
			if !strings.Contains(stdout.String(), tc.want) || stderr.Len() != 0 {
				t.Fatalf("stdout %q (want %q), stderr %q (want empty)", stdout.String(), tc.want, stderr.String())
			}
		})
	}
}

func TestMain_Usage(t *testing.T) {
	for _, args := range [][]string{nil, {"serv"}, {"serve", "extra"}} {
		var stderr bytes.Buffer
		m := &Main{Stdout: io.Discard, Stderr: &stderr}
		if err := m.ParseFlags(args); err == nil {
			t.Fatalf("args %q accepted", args)
		}
	}
}

// TestMain_RunServesAndCloses runs the real program in-process on a free port
// with SQLite realms in a temp dir.
func TestMain_RunServesAndCloses(t *testing.T) {
	dir := t.TempDir()
	cfg := mustConfigFile(t, `listen: 127.0.0.1:0
dataDir: `+dir+`
realms:
  global: {baseUrl: http://localhost:8080}
  US: {baseUrl: http://localhost:8080/realms/us}
`)
	var stdout, stderr bytes.Buffer
	m := &Main{Stdout: &stdout, Stderr: &stderr}
	if err := m.ParseFlags([]string{"serve", "--config", cfg}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + m.Addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz %d", resp.StatusCode)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// The banner comes whole, on stderr, before the first log line (here the
	// schema migrations of the new databases), so the two never interleave.
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing (the banner and the logs go to stderr)", stdout.String())
	}
	lines := strings.Split(stderr.String(), "\n")
	if len(lines) < 5 {
		t.Fatalf("start-up output:\n%s", stderr.String())
	}
	banner, logs := strings.Join(lines[:4], "\n"), lines[4:]
	for _, want := range []string{"realmhook " + realmhook.Version() + " on " + m.Addr, "descriptor  http://localhost:8080/atlassian-connect.json", "realm US", filepath.Join(dir, "us.db")} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, stderr.String())
		}
	}
	if !strings.Contains(stderr.String(), `"msg":"applied schema migration"`) {
		t.Errorf("no schema migration logged (the test wants a log line that could precede the banner):\n%s", stderr.String())
	}
	for _, l := range logs {
		if l != "" && !strings.HasPrefix(l, "{") {
			t.Errorf("after the banner, line %q is not a JSON log line:\n%s", l, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "us.db")); err != nil {
		t.Fatalf("US database not created: %v", err)
	}
}

// TestMain_BannerMatchesREADME: the README shows what `make run` prints, so
// the embedded shape's banner must be the README's, but for the version.
func TestMain_BannerMatchesREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "`make run` prints its version")
	if !ok {
		t.Fatal("README has no paragraph on what `make run` prints")
	}
	_, block, _ := strings.Cut(after, "```\n")
	want := strings.Split(block, "\n")[:2+len(config.Default().Realms)]

	var stderr bytes.Buffer
	cfg := config.Default()
	m := &Main{Config: cfg, Stderr: &stderr, Addr: cfg.Listen}
	m.printBanner(cfg.Realms["global"].BaseURL)
	got := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	// The README's version is an example.
	if f := strings.Fields(want[0]); len(f) == 4 {
		f[1] = realmhook.Version()
		want[0] = strings.Join(f, " ")
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("banner:\n%s\nREADME shows:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMain_TablesCheckedAtStartUp: every configured table must exist in every
// served realm's database, with its tenant column and a unique key on tenant
// column and key; start-up fails naming realm and table otherwise.
func TestMain_TablesCheckedAtStartUp(t *testing.T) {
	for _, tc := range []struct {
		name, usDDL, want string
	}{
		{"Missing", ``, "realm US: table issue_notes"},
		{"NoTenantColumn", `CREATE TABLE issue_notes (id INTEGER NOT NULL PRIMARY KEY, body TEXT)`, "tenant"},
		{"NoUniqueKey", `CREATE TABLE issue_notes (tenant TEXT NOT NULL, id INTEGER NOT NULL, body TEXT)`, "unique"},
		{"OK", `CREATE TABLE issue_notes (tenant TEXT NOT NULL, id INTEGER NOT NULL, body TEXT, PRIMARY KEY (tenant, id))`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mustSQLite(t, filepath.Join(dir, "global.db"), `CREATE TABLE issue_notes (tenant TEXT NOT NULL, id INTEGER NOT NULL, body TEXT, PRIMARY KEY (tenant, id))`)
			mustSQLite(t, filepath.Join(dir, "us.db"), tc.usDDL)
			cfg := mustConfigFile(t, `listen: 127.0.0.1:0
dataDir: `+dir+`
tables:
  - {name: issue_notes, tenantColumn: tenant, key: [id]}
realms:
  global: {baseUrl: http://localhost:8080}
  US: {baseUrl: http://localhost:8080/realms/us}
`)
			m := &Main{Stdout: io.Discard, Stderr: io.Discard}
			if err := m.ParseFlags([]string{"serve", "--config", cfg}); err != nil {
				t.Fatal(err)
			}
			err := m.Run(context.Background())
			t.Cleanup(func() { _ = m.Close() })
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("start-up accepted a realm whose table cannot be migrated")
			}
			if msg := err.Error(); !strings.Contains(msg, "realm US") || !strings.Contains(msg, "issue_notes") || !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q: want it to name realm US, table issue_notes and %q", msg, tc.want)
			}
		})
	}
}

// mustSQLite creates a SQLite database at path and runs ddl in it ("": none).
func mustSQLite(t *testing.T, path, ddl string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if ddl == "" {
		ddl = `CREATE TABLE unrelated (x INTEGER)`
	}
	if _, err := db.Exec(ddl); err != nil {
		t.Fatalf("%s: %v", ddl, err)
	}
}

// TestMain_PlaintextSecretsWarnOnce: the embedded shape without secrets.keys
// starts, warning once that shared secrets are stored in plain text.
func TestMain_PlaintextSecretsWarnOnce(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		warnings    int
	}{
		{"NoKeys", "", 1},
		{"Keys", "secrets: {keys: [MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=]}\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustConfigFile(t, "listen: 127.0.0.1:0\ndataDir: "+t.TempDir()+"\nrealms:\n  global: {baseUrl: http://localhost:8080}\n"+tc.extra)
			var stderr bytes.Buffer
			m := &Main{Stdout: io.Discard, Stderr: &stderr}
			if err := m.ParseFlags([]string{"serve", "--config", cfg}); err != nil {
				t.Fatal(err)
			}
			if err := m.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(stderr.String(), "secrets.keys is not set"); n != tc.warnings {
				t.Fatalf("%d plaintext warnings, want %d:\n%s", n, tc.warnings, stderr.String())
			}
		})
	}
}

// TestMain_AdminListener: admin.listen opens a listener of its own, behind
// admin.token (read from the environment), and Close shuts it.
func TestMain_AdminListener(t *testing.T) {
	t.Setenv("REALMHOOK_TEST_ADMIN_TOKEN", "main-test-admin-token-0123")
	cfg := mustConfigFile(t, `listen: 127.0.0.1:0
dataDir: `+t.TempDir()+`
admin: {listen: 127.0.0.1:0, token: "${REALMHOOK_TEST_ADMIN_TOKEN}"}
realms:
  global: {baseUrl: http://localhost:8080}
`)
	var stderr bytes.Buffer
	m := &Main{Stdout: io.Discard, Stderr: &stderr}
	if err := m.ParseFlags([]string{"serve", "--config", cfg}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.AdminAddr == "" || m.AdminAddr == m.Addr {
		t.Fatalf("AdminAddr = %q (Addr %q)", m.AdminAddr, m.Addr)
	}
	call := func(token string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+m.AdminAddr+"/realmhook.admin.v1.AdminService/ListRealms", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := call("main-test-admin-token-0123"); got != http.StatusOK {
		t.Errorf("ListRealms with the token: %d", got)
	}
	if got := call(""); got != http.StatusUnauthorized {
		t.Errorf("ListRealms without a token: %d, want 401", got)
	}
	if !strings.Contains(stderr.String(), "admin API   http://"+m.AdminAddr) {
		t.Errorf("banner does not name the admin API:\n%s", stderr.String())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + m.AdminAddr + "/metrics"); err == nil {
		t.Error("admin listener still answers after Close")
	}
}
