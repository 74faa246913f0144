package manifest_test

import (
	"strings"
	"testing"

	"github.com/realmhook/realmhook/config"
	"github.com/realmhook/realmhook/manifest"
)

func forgeConfig(t *testing.T, connect bool) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Forge = config.Forge{AppID: "406d303d-0393-4ec4-ad7c-1435be94583a", Connect: connect,
		JWKSURL: "https://jwks.example.com/jwks.json", MigrationPath: "/migration", EventsPath: "/forge/events", MaxMigrationDurationHours: 1.5, Remote: "backend"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestFromConfig(t *testing.T) {
	m, err := manifest.FromConfig(forgeConfig(t, true))
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"id: ari:cloud:ecosystem::app/406d303d-0393-4ec4-ad7c-1435be94583a",
		"remote: backend",
		"      default: http://localhost:8080\n      EU: http://localhost:8080/realms/eu\n      US: http://localhost:8080/realms/us\n",
		"inScopeEUD: true",
		"migration:dataResidency:\n    - key: realmhook-dare\n      remote: backend\n      path: /migration\n      maxMigrationDurationHours: 1.5\n",
		"- avi:forge:installed:app",
		"path: /forge/events",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("manifest lacks %q:\n%s", want, b)
		}
	}
	if p := manifest.Lint(b); len(p) != 0 {
		t.Errorf("the built manifest has problems: %v", p)
	}
	back, err := manifest.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := back.Remotes[0].BaseURL.Region("EU"); !ok || u != "http://localhost:8080/realms/eu" {
		t.Errorf("EU base URL %q", u)
	}
	if r, p, ok := back.LifecyclePath(); !ok || r != "backend" || p != "/forge/events" {
		t.Errorf("lifecycle path %q %q %v", r, p, ok)
	}
	if _, err := manifest.FromConfig(config.Default()); err == nil {
		t.Error("a manifest for a config without forge.appId")
	}
}

func TestLint(t *testing.T) {
	const good = `app:
  id: ari:cloud:ecosystem::app/406d303d-0393-4ec4-ad7c-1435be94583a
remotes:
  - key: backend
    baseUrl:
      default: https://app.example.com
      EU: https://eu.app.example.com
      US: https://us.app.example.com
    operations: [storage]
    storage:
      inScopeEUD: true
modules:
  migration:dataResidency:
    - key: dare
      remote: backend
      path: /migration
      maxMigrationDurationHours: 1.5
`
	for _, tc := range []struct{ name, from, to, want string }{
		{"Good", "", "", ""},
		{"UnknownRegion", "      US: https://us", "      UK: https://uk", `remotes[0].baseUrl.UK: the host does not know region "UK"`},
		{"NoDefault", "      default: https://app.example.com\n", "", "remotes[0].baseUrl.default: required"},
		{"DurationOffStep", "maxMigrationDurationHours: 1.5", "maxMigrationDurationHours: 1.25", "modules.migration:dataResidency[0].maxMigrationDurationHours: must be from 0.5 to 24 hours in steps of 0.5, got 1.25"},
		{"DurationTooLong", "maxMigrationDurationHours: 1.5", "maxMigrationDurationHours: 48", "maxMigrationDurationHours: must be from 0.5 to 24"},
		{"NoSuchRemote", "      remote: backend\n", "      remote: other\n", `modules.migration:dataResidency[0].remote: no remote "other" in remotes`},
		{"NoInScope", "    storage:\n      inScopeEUD: true\n", "", "remotes[0].storage.inScopeEUD: required"},
		{"RegionsDiffer", "modules:", "  - key: second\n    baseUrl:\n      default: https://b.example.com\n      EU: https://eu.b.example.com\nmodules:",
			`remotes[1].baseUrl: regions EU differ from remote "backend"'s EU,US`},
		{"ComputeOnlyMayDiffer", "modules:", "  - key: second\n    baseUrl: https://b.example.com\n    operations: [compute]\nmodules:", ""},
		{"BadKey", "  - key: backend", "  - key: a key with spaces", "remotes[0].key: want 1 to 23"},
		{"NotYAML", "remotes:", "remotes: [", "$: manifest:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := good
			if tc.from != "" {
				if !strings.Contains(src, tc.from) {
					t.Fatalf("no %q in the manifest", tc.from)
				}
				src = strings.Replace(src, tc.from, tc.to, 1)
			}
			got := manifest.Lint([]byte(src))
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("problems %v, want none", got)
				}
				return
			}
			for _, p := range got {
				if strings.Contains(p.String(), tc.want) {
					return
				}
			}
			t.Fatalf("problems %v, want one containing %q", got, tc.want)
		})
	}
}
