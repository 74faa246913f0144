package descriptor

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/config"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func mustBuild(t *testing.T, template []byte, baseURL string, regions map[string]string, o Overrides) []byte {
	t.Helper()
	b, err := Build(template, baseURL, regions, o)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return b
}

func mustParseDescriptor(t *testing.T, b []byte) *Descriptor {
	t.Helper()
	d, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return d
}

func mustKeys(t *testing.T, b []byte) []string {
	t.Helper()
	o, err := parseObject(b)
	if err != nil {
		t.Fatalf("parseObject: %v", err)
	}
	return o.keys
}

func TestBuild_GoldenDefault(t *testing.T) {
	got, err := FromConfig(config.Default())
	if err != nil {
		t.Fatalf("FromConfig: %v", err)
	}
	golden := filepath.Join("testdata", "default.golden.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Errorf("FromConfig(Default()) differs from %s:\n%s", golden, got)
	}

	t.Run("MatchesBuild", func(t *testing.T) {
		cfg := config.Default()
		direct := mustBuild(t, realmhook.DescriptorTemplate, cfg.Realms["global"].BaseURL, map[string]string{
			"global": "ignored", "US": cfg.Realms["US"].BaseURL, "EU": cfg.Realms["EU"].BaseURL,
		}, Overrides{})
		if !bytes.Equal(direct, got) {
			t.Errorf("Build differs from FromConfig:\n%s", direct)
		}
	})
	t.Run("Fields", func(t *testing.T) {
		d := mustParseDescriptor(t, got)
		want := &Descriptor{
			Key:            "com.example.realmhook-app",
			Name:           "Realmhook example app",
			BaseURL:        "http://localhost:8080",
			RegionBaseURLs: map[string]string{"EU": "http://localhost:8080/realms/eu", "US": "http://localhost:8080/realms/us"},
			Lifecycle: Lifecycle{Installed: "/installed", Uninstalled: "/uninstalled", Enabled: "/enabled",
				Disabled: "/disabled", DareMigration: "/dare-migration"},
			SignedInstall:             true,
			MaxMigrationDurationHours: 24,
		}
		if !reflect.DeepEqual(d, want) {
			t.Errorf("Parse = %+v\nwant    %+v", d, want)
		}
	})
	t.Run("KeepsTemplateFieldsInOrder", func(t *testing.T) {
		if got, want := mustKeys(t, got), mustKeys(t, realmhook.DescriptorTemplate); !reflect.DeepEqual(got, want) {
			t.Errorf("keys = %v, want the template's %v", got, want)
		}
	})
	t.Run("LintsClean", func(t *testing.T) {
		if p := Lint(got); len(p) != 0 {
			t.Errorf("Lint = %v, want no problems", p)
		}
	})
}

func TestBuild(t *testing.T) {
	const minimal = `{"key": "k", "name": "N", "authentication": {"type": "jwt"}, "vendor": {"url": "https://v.example.com/?a=1&b=2"}}`
	regions := map[string]string{"US": "https://us.example.com", "EU": "https://eu.example.com", "AU": "https://au.example.com"}

	t.Run("AddsMissingFields", func(t *testing.T) {
		b := mustBuild(t, []byte(minimal), "https://app.example.com", regions, Overrides{})
		d := mustParseDescriptor(t, b)
		if !d.SignedInstall {
			t.Error("signed-install not set")
		}
		want := Lifecycle{"/installed", "/uninstalled", "/enabled", "/disabled", "/dare-migration"}
		if d.Lifecycle != want {
			t.Errorf("lifecycle = %+v, want %+v", d.Lifecycle, want)
		}
		if !reflect.DeepEqual(d.RegionBaseURLs, regions) {
			t.Errorf("regionBaseUrls = %v, want %v", d.RegionBaseURLs, regions)
		}
		if got, want := mustKeys(t, b), []string{"key", "name", "authentication", "vendor", "baseUrl", "regionBaseUrls", "apiMigrations", "lifecycle"}; !reflect.DeepEqual(got, want) {
			t.Errorf("keys = %v, want %v", got, want)
		}
		if !bytes.Contains(b, []byte(`"https://v.example.com/?a=1&b=2"`)) {
			t.Errorf("vendor.url not kept byte for byte (HTML-escaped?):\n%s", b)
		}
	})
	t.Run("RegionsSorted", func(t *testing.T) {
		b := mustBuild(t, []byte(minimal), "https://app.example.com", regions, Overrides{})
		var doc struct {
			RegionBaseURLs json.RawMessage `json:"regionBaseUrls"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if got, want := mustKeys(t, doc.RegionBaseURLs), []string{"AU", "EU", "US"}; !reflect.DeepEqual(got, want) {
			t.Errorf("region keys = %v, want %v", got, want)
		}
	})
	t.Run("Deterministic", func(t *testing.T) {
		first := mustBuild(t, []byte(minimal), "https://app.example.com", regions, Overrides{})
		for i := 0; i < 20; i++ {
			if b := mustBuild(t, []byte(minimal), "https://app.example.com", regions, Overrides{}); !bytes.Equal(b, first) {
				t.Fatalf("build %d differs:\n%s\nvs\n%s", i, b, first)
			}
		}
	})
	t.Run("KeepsCustomLifecyclePathsAndFlags", func(t *testing.T) {
		tpl := `{"key": "k", "name": "N", "authentication": {"type": "jwt"},
			"apiMigrations": {"gdpr": true, "signed-install": false},
			"lifecycle": {"installed": "/hooks/installed", "dare-migration": "/dr"},
			"regionBaseUrls": {"JP": "https://stale.example.com"}}`
		b := mustBuild(t, []byte(tpl), "https://app.example.com", nil, Overrides{})
		d := mustParseDescriptor(t, b)
		if d.Lifecycle.Installed != "/hooks/installed" || d.Lifecycle.DareMigration != "/dr" || d.Lifecycle.Enabled != "/enabled" {
			t.Errorf("lifecycle = %+v", d.Lifecycle)
		}
		if !d.SignedInstall || !bytes.Contains(b, []byte(`"gdpr": true`)) {
			t.Errorf("apiMigrations not merged:\n%s", b)
		}
		if len(d.RegionBaseURLs) != 0 {
			t.Errorf("regionBaseUrls = %v, want the template's replaced by config's (none)", d.RegionBaseURLs)
		}
	})
	t.Run("Overrides", func(t *testing.T) {
		b := mustBuild(t, []byte(minimal), "https://app.example.com", nil, Overrides{Key: "com.acme.app", Name: "Acme"})
		d := mustParseDescriptor(t, b)
		if d.Key != "com.acme.app" || d.Name != "Acme" {
			t.Errorf("key, name = %q, %q", d.Key, d.Name)
		}
	})

	errorCases := []struct {
		name, template, baseURL string
		regions                 map[string]string
		want                    string
	}{
		{"InvalidJSON", `{"key": `, "https://app.example.com", nil, "descriptor template:"},
		{"NotAnObject", `["key"]`, "https://app.example.com", nil, "descriptor template: not a JSON object"},
		{"DuplicateKey", `{"key": "a", "key": "b"}`, "https://app.example.com", nil, `descriptor template: key "key" appears twice`},
		{"LifecycleNotObject", `{"key": "k", "lifecycle": "/x"}`, "https://app.example.com", nil, "descriptor template: lifecycle: not a JSON object"},
		{"TrailingData", minimal + `{}`, "https://app.example.com", nil, "descriptor template: data after the JSON object"},
		{"ResultInvalid", `{"key": "bad key", "name": "N", "authentication": {"type": "jwt"}}`, "https://app.example.com", nil,
			`descriptor: key: may hold only letters`},
		{"BadBaseURL", minimal, "app.example.com", nil, `descriptor: baseUrl: must be an absolute https URL`},
		{"DuplicateRegionURL", minimal, "https://app.example.com", map[string]string{"EU": "https://x.example.com", "US": "https://x.example.com/"},
			"descriptor: regionBaseUrls.US: same URL as regionBaseUrls.EU"},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build([]byte(tt.template), tt.baseURL, tt.regions, Overrides{})
			if realmhook.ErrorCode(err) != realmhook.EINVALID {
				t.Fatalf("err = %v, want EINVALID", err)
			}
			if msg := realmhook.ErrorMessage(err); !strings.Contains(msg, tt.want) {
				t.Errorf("message = %q, want it to contain %q", msg, tt.want)
			}
		})
	}

	t.Run("AdvisoryProblemsDoNotFail", func(t *testing.T) {
		b := mustBuild(t, []byte(minimal), "http://app.internal:8080", map[string]string{"XX": "https://xx.example.com"}, Overrides{})
		if n := len(Lint(b)); n != 2 {
			t.Errorf("Lint found %d problems, want 2 advisory ones: %v", n, Lint(b))
		}
	})
}

func TestFromConfig(t *testing.T) {
	dir := t.TempDir()
	tpl := filepath.Join(dir, "tpl.json")
	if err := os.WriteFile(tpl, []byte(`{"key": "from.file", "name": "File", "authentication": {"type": "jwt"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.App.Descriptor = tpl
	cfg.App.Name = "Overridden"
	cfg.Serve = []string{"EU"}
	b, err := FromConfig(cfg)
	if err != nil {
		t.Fatalf("FromConfig: %v", err)
	}
	d := mustParseDescriptor(t, b)
	if d.Key != "from.file" || d.Name != "Overridden" {
		t.Errorf("key, name = %q, %q", d.Key, d.Name)
	}
	if len(d.RegionBaseURLs) != 2 {
		t.Errorf("regionBaseUrls = %v, want every non-global realm, not only served ones", d.RegionBaseURLs)
	}

	t.Run("MissingTemplate", func(t *testing.T) {
		cfg.App.Descriptor = filepath.Join(dir, "nope.json")
		if _, err := FromConfig(cfg); err == nil || !strings.Contains(err.Error(), "app.descriptor") {
			t.Errorf("err = %v, want one naming app.descriptor", err)
		}
	})
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // error substring; "" means it parses
	}{
		{"Minimal", `{}`, ""},
		{"NotJSON", `nope`, "descriptor: invalid character"},
		{"WrongType", `{"baseUrl": 5}`, "descriptor: json: cannot unmarshal number"},
		{"RegionNotString", `{"regionBaseUrls": {"EU": true}}`, "descriptor: json: cannot unmarshal bool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.in))
			if tt.want == "" {
				if err != nil || d.RegionBaseURLs == nil {
					t.Fatalf("Parse = %+v, %v; want a descriptor with a non-nil region map", d, err)
				}
				return
			}
			if realmhook.ErrorCode(err) != realmhook.EINVALID || !strings.Contains(realmhook.ErrorMessage(err), tt.want) {
				t.Errorf("err = %v, want EINVALID containing %q", err, tt.want)
			}
		})
	}
}
