package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/realmhook/realmhook/config"
	"github.com/realmhook/realmhook/descriptor"
)

func mustWriteFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDescriptor_Print(t *testing.T) {
	t.Run("DefaultConfig", func(t *testing.T) {
		want, err := descriptor.FromConfig(config.Default())
		if err != nil {
			t.Fatal(err)
		}
		r := mustRun(t, "descriptor")
		if r.code != exitOK || r.stderr != "" {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if r.stdout != string(want)+"\n" {
			t.Errorf("stdout = %s\nwant %s", r.stdout, want)
		}
	})

	t.Run("ConfigFile", func(t *testing.T) {
		t.Setenv("REALMCTL_TEST_EU_URL", "https://eu.acme.example.com")
		path := mustWriteFile(t, "realmhook.yaml", `
app: {key: com.acme.app, name: Acme}
realms:
  global: {baseUrl: "https://acme.example.com"}
  EU: {baseUrl: "${REALMCTL_TEST_EU_URL}"}
  GB: {baseUrl: "https://gb.acme.example.com"}
`)
		r := mustRun(t, "descriptor", "--config", path)
		if r.code != exitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		d, err := descriptor.Parse([]byte(r.stdout))
		if err != nil {
			t.Fatal(err)
		}
		if d.Key != "com.acme.app" || d.Name != "Acme" || d.BaseURL != "https://acme.example.com" {
			t.Errorf("key, name, baseUrl = %q, %q, %q", d.Key, d.Name, d.BaseURL)
		}
		if d.RegionBaseURLs["EU"] != "https://eu.acme.example.com" || d.RegionBaseURLs["GB"] != "https://gb.acme.example.com" || len(d.RegionBaseURLs) != 2 {
			t.Errorf("regionBaseUrls = %v", d.RegionBaseURLs)
		}
	})

	failures := []struct {
		name   string
		args   func(t *testing.T) []string
		code   int
		stderr string
	}{
		{"UnknownConfigKey", func(t *testing.T) []string {
			return []string{"descriptor", "--config", mustWriteFile(t, "c.yaml", "realms:\n  global: {baseUrl: \"https://a.example.com\"}\n  EU:\n    baseUrl: https://eu.example.com\n    databse: sqlite:x\n")}
		}, exitFailure, "realmctl descriptor: config: realms.EU.databse: unknown key\n"},
		{"MissingConfigFile", func(t *testing.T) []string {
			return []string{"descriptor", "--config", filepath.Join(t.TempDir(), "none.yaml")}
		}, exitFailure, "none.yaml"},
		{"BadTemplate", func(t *testing.T) []string {
			tpl := mustWriteFile(t, "tpl.json", `{"key": "k", "name": "N"}`)
			return []string{"descriptor", "--config", mustWriteFile(t, "c.yaml", "app: {descriptor: "+tpl+"}\nrealms:\n  global: {baseUrl: \"https://a.example.com\"}\n")}
		}, exitFailure, `realmctl descriptor: descriptor: authentication.type: required: "jwt"`},
		{"ExtraArgument", func(t *testing.T) []string { return []string{"descriptor", "extra"} }, exitUsage, `unexpected argument "extra"`},
		{"UnknownFlag", func(t *testing.T) []string { return []string{"descriptor", "--frob"} }, exitUsage, "flag provided but not defined: -frob"},
		{"Help", func(t *testing.T) []string { return []string{"descriptor", "-h"} }, exitOK, "realmctl descriptor lint FILE"},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, tt.args(t)...)
			if r.code != tt.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want it empty", r.stdout)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tt.stderr)
			}
		})
	}
}

func TestDescriptor_Lint(t *testing.T) {
	built, err := descriptor.FromConfig(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	good := mustWriteFile(t, "good.json", string(built))
	bad := mustWriteFile(t, "bad.json", `{"key": "k", "name": "N", "baseUrl": "https://a.example.com",
		"authentication": {"type": "jwt"}, "regionBaseUrls": {"UK": "https://uk.example.com"},
		"lifecycle": {"installed": "installed"}}`)

	cfg := config.Default()
	cfg.Realms["FR"] = config.Realm{BaseURL: "http://localhost:8080/realms/fr", Database: "sqlite:fr.db"}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config refuses realm FR: %v", err)
	}
	builtFR, err := descriptor.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fr := mustWriteFile(t, "fr.json", string(builtFR))

	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
		exact          bool // stdout must equal, not just contain, stdout
	}{
		{"Good", []string{"descriptor", "lint", good}, exitOK, "ok\n", "", true},
		{"Bad", []string{"descriptor", "lint", bad}, exitFailure,
			"regionBaseUrls.UK: warning: the host does not know region \"UK\": use \"GB\"\n" +
				"lifecycle.installed: must be a path starting with \"/\" (relative to the base URL), got \"installed\"\n" +
				"lifecycle.uninstalled: required: the host installs the app through it\n" +
				"lifecycle.dare-migration: required when regionBaseUrls is set: the host sends its migration hooks under it\n" +
				"apiMigrations.signed-install: must be true when regionBaseUrls or lifecycle.dare-migration is set (data residency requires signed install)\n", "", true},
		// The repository's own template, as the README's user runs it.
		{"RepoTemplate", []string{"descriptor", "lint", "../../atlassian-connect.json"}, exitOK,
			"template: realmhook fills in baseUrl, regionBaseUrls, apiMigrations.signed-install and missing lifecycle hooks\nok\n", "", true},
		// FR is a realm key config accepts: a warning, not a failure.
		{"WarningsOnly", []string{"descriptor", "lint", fr}, exitOK,
			"regionBaseUrls.FR: warning: the host does not know region \"FR\" (it knows AU CA CH DE EU GB IN JP KR SG US): it ignores it, and conformance fails\nok\n", "", true},
		{"NotJSON", []string{"descriptor", "lint", mustWriteFile(t, "x.json", "nope")}, exitFailure, "$: invalid JSON: invalid character", "", false},
		{"MissingFile", []string{"descriptor", "lint", filepath.Join(t.TempDir(), "none.json")}, exitFailure, "", "realmctl descriptor: lint: open", false},
		{"NoFile", []string{"descriptor", "lint"}, exitUsage, "", "lint takes exactly one FILE, got 0 arguments", false},
		{"TwoFiles", []string{"descriptor", "lint", good, bad}, exitUsage, "", "lint takes exactly one FILE, got 2 arguments", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if tt.exact && r.stdout != tt.stdout {
				t.Errorf("stdout = %q, want exactly %q", r.stdout, tt.stdout)
			}
			checkOutput(t, "stdout", r.stdout, tt.stdout)
			checkOutput(t, "stderr", r.stderr, tt.stderr)
		})
	}
}
