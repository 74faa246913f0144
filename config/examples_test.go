package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// exampleEnv is what the examples read from the environment.
var exampleEnv = env{
	"GLOBAL_DATABASE_URL":       "postgres://rh:secret@db.global.example.com/realmhook",
	"EU_DATABASE_URL":           "postgres://rh:secret@db.eu.example.com/realmhook",
	"US_DATABASE_URL":           "postgres://rh:secret@db.us.example.com/realmhook",
	"REALMHOOK_SECRET_KEY":      "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	"REALMHOOK_IDENTITY_SECRET": "an-identity-secret-of-at-least-32-bytes",
	"REALMHOOK_INTERNAL_SECRET": "an-internal-secret",
}

// TestExamples: every example config loads and validates; the embedded one
// is exactly what realmhook runs without a config.
func TestExamples(t *testing.T) {
	paths, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(paths) < 2 {
		t.Fatalf("examples: %v %v, want one per shape", paths, err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := parse(src, exampleEnv.lookup)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			if filepath.Base(path) == "embedded.yaml" && !reflect.DeepEqual(cfg, Default()) {
				t.Fatalf("embedded.yaml is not the embedded shape:\n%+v\nwant %+v", cfg, Default())
			}
		})
	}
}

var readmeYAML = regexp.MustCompile("(?s)```yaml\n(.*?)```\n")

// TestExamples_README: every YAML block in the README is one of the example
// files, byte for byte, so an example in the README cannot rot.
func TestExamples_README(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := map[string]string{}
	paths, _ := filepath.Glob("examples/*.yaml")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		examples[string(b)] = p
	}
	blocks := readmeYAML.FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("README has no yaml blocks")
	}
	for _, b := range blocks {
		if strings.HasPrefix(b[1], "app:\n") {
			// A Forge manifest.yml snippet, which integration's
			// TestREADME_ForgeManifest holds to realmctl manifest's output.
			continue
		}
		if _, ok := examples[b[1]]; !ok {
			first, _, _ := strings.Cut(b[1], "\n")
			t.Errorf("README yaml block starting %q is not a file in config/examples", first)
		}
	}
}
