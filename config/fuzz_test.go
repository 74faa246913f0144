package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/realmhook/realmhook"
)

// FuzzParse: config loading never panics; a refusal is an EINVALID error of
// one line that starts with "config:" (start-up prints it as is); what is
// accepted validates, and loads again to the same result.
func FuzzParse(f *testing.F) {
	f.Add(minimalYAML)
	f.Add(minimalYAML + "http: {readTimeout: 1s, maxHeaderBytes: 4096}\n")
	f.Add("listen: ${PORT:-:8080}\nrealms:\n  global: {baseUrl: ${BASE}}\n")
	f.Add("realms: {global: {baseUrl: 'http://x', database: 'postgres://u:${SECRET}@h/db'}}\ntables: [{name: t, tenantColumn: c, key: [id]}]\n")
	f.Add("a: &a [*a]\n")
	f.Add("realms:\n  global:\n    baseUrl: http://x\n  eu: {baseUrl: http://y}\n---\nx: 1\n")
	f.Add("${")
	f.Add("jwt: {leeway: -1s}\nmigration: {maxConcurrent: 99999999999999999999}\n")
	env := map[string]string{"PORT": "127.0.0.1:9000", "BASE": "https://app.example.com", "SECRET": "s3cr3t"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := parse([]byte(src), lookup)
		if err != nil {
			var e *realmhook.Error
			if !errors.As(err, &e) || e.Code != realmhook.EINVALID {
				t.Fatalf("refusal %v (%T) is not EINVALID", err, err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "config") {
				t.Fatalf("refusal is not one line naming the config: %q", msg)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted a config that does not validate: %v", err)
		}
		if again, err := parse([]byte(src), lookup); err != nil || again.Listen != cfg.Listen || len(again.Realms) != len(cfg.Realms) {
			t.Fatalf("loading again gave %+v, %v", again, err)
		}
	})
}
