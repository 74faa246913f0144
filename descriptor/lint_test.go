package descriptor

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/realmhook/realmhook"
)

// goodDescriptor is a descriptor Lint finds nothing wrong with.
func goodDescriptor() map[string]any {
	return map[string]any{
		"key":            "com.example.app",
		"name":           "Example",
		"baseUrl":        "https://app.example.com",
		"authentication": map[string]any{"type": "jwt"},
		"regionBaseUrls": map[string]any{"EU": "https://eu.app.example.com", "US": "https://us.app.example.com"},
		"apiMigrations":  map[string]any{"signed-install": true},
		"dataResidency":  map[string]any{"maxMigrationDurationHours": 24},
		"lifecycle": map[string]any{
			"installed": "/installed", "uninstalled": "/uninstalled", "enabled": "/enabled",
			"disabled": "/disabled", "dare-migration": "/dare-migration",
		},
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sub(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

func TestLint(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(d map[string]any)
		path     string // "" means no problem
		message  string
		advisory bool
	}{
		{"Good", func(d map[string]any) {}, "", "", false},
		{"KeyMissing", func(d map[string]any) { delete(d, "key") }, "key", "required", false},
		{"KeyEmpty", func(d map[string]any) { d["key"] = " " }, "key", "required, got an empty string", false},
		{"KeyNotString", func(d map[string]any) { d["key"] = 7 }, "key", "must be a string, got a number", false},
		{"KeyTooLong", func(d map[string]any) { d["key"] = strings.Repeat("a", MaxKeyLen+1) }, "key", "longer than 80 characters (81)", false},
		{"KeyMaxLength", func(d map[string]any) { d["key"] = strings.Repeat("a", MaxKeyLen) }, "", "", false},
		{"KeyBadChars", func(d map[string]any) { d["key"] = "com.example/app" }, "key", `may hold only letters, digits, '-', '.' and '_', got "com.example/app"`, false},
		{"KeyAllowedChars", func(d map[string]any) { d["key"] = "Com.Ex-am_ple.9" }, "", "", false},
		{"NameMissing", func(d map[string]any) { delete(d, "name") }, "name", "required", false},
		{"BaseURLMissing", func(d map[string]any) { delete(d, "baseUrl") }, "baseUrl", "required", false},
		{"BaseURLRelative", func(d map[string]any) { d["baseUrl"] = "/app" }, "baseUrl", `must be an absolute https URL, got "/app"`, false},
		{"BaseURLFTP", func(d map[string]any) { d["baseUrl"] = "ftp://app.example.com" }, "baseUrl", "must be an absolute https URL", false},
		{"BaseURLQuery", func(d map[string]any) { d["baseUrl"] = "https://app.example.com/?x=1" }, "baseUrl", "must not have a query or fragment", false},
		{"BaseURLPlainHTTP", func(d map[string]any) { d["baseUrl"] = "http://app.example.com" }, "baseUrl", "must be https (http is allowed only for localhost)", true},
		{"BaseURLHTTPLocalhost", func(d map[string]any) { d["baseUrl"] = "http://localhost:8080" }, "", "", false},
		{"BaseURLHTTPLoopback", func(d map[string]any) { d["baseUrl"] = "http://127.0.0.1:8080/x" }, "", "", false},
		{"AuthenticationMissing", func(d map[string]any) { delete(d, "authentication") }, "authentication.type", `required: "jwt"`, false},
		{"AuthenticationTypeMissing", func(d map[string]any) { d["authentication"] = map[string]any{} }, "authentication.type", `required: "jwt"`, false},
		{"AuthenticationNone", func(d map[string]any) { sub(d, "authentication")["type"] = "none" }, "authentication.type", `must be "jwt", got "none"`, false},
		{"AuthenticationNotObject", func(d map[string]any) { d["authentication"] = "jwt" }, "authentication", "must be an object, got a string", false},
		{"RegionsNotObject", func(d map[string]any) { d["regionBaseUrls"] = []any{} }, "regionBaseUrls", "must be an object of region key to URL, got an array", false},
		{"RegionsMissing", func(d map[string]any) { delete(d, "regionBaseUrls") }, "regionBaseUrls", "missing: the app can live in the Global realm only", true},
		{"RegionsEmpty", func(d map[string]any) { d["regionBaseUrls"] = map[string]any{} }, "regionBaseUrls", "empty: the app can live in the Global realm only", true},
		{"RegionUK", func(d map[string]any) { sub(d, "regionBaseUrls")["UK"] = "https://uk.example.com" }, "regionBaseUrls.UK", `the host does not know region "UK": use "GB"`, true},
		{"RegionUnknown", func(d map[string]any) { sub(d, "regionBaseUrls")["XX"] = "https://xx.example.com" }, "regionBaseUrls.XX", `the host does not know region "XX" (it knows AU CA CH DE EU GB IN JP KR SG US)`, true},
		// Config accepts any realm key of 2 to 8 upper-case letters, so lint
		// only warns about one the host does not list.
		{"RegionFR", func(d map[string]any) { sub(d, "regionBaseUrls")["FR"] = "https://fr.example.com" }, "regionBaseUrls.FR", `the host does not know region "FR"`, true},
		{"RegionKeyTooLong", func(d map[string]any) { sub(d, "regionBaseUrls")["ABCDEFGHI"] = "https://x.example.com" }, "regionBaseUrls.ABCDEFGHI", `"ABCDEFGHI" is not a region key (a realm key is "global" or 2 to 8 upper-case letters`, false},
		{"RegionLowerCase", func(d map[string]any) { sub(d, "regionBaseUrls")["eu"] = "https://eu2.example.com" }, "regionBaseUrls.eu", `"eu" is not a region key`, false},
		{"RegionGlobal", func(d map[string]any) { sub(d, "regionBaseUrls")["global"] = "https://g.example.com" }, "regionBaseUrls.global", `"global" is not a region key`, false},
		{"RegionEveryKnownKey", func(d map[string]any) {
			r := map[string]any{}
			for _, k := range KnownRegions {
				r[k] = "https://" + strings.ToLower(k) + ".example.com"
			}
			d["regionBaseUrls"] = r
		}, "", "", false},
		{"RegionURLNotString", func(d map[string]any) { sub(d, "regionBaseUrls")["EU"] = 1 }, "regionBaseUrls.EU", "must be a string, got a number", false},
		{"RegionURLRelative", func(d map[string]any) { sub(d, "regionBaseUrls")["EU"] = "eu.example.com" }, "regionBaseUrls.EU", "must be an absolute https URL", false},
		{"RegionURLPlainHTTP", func(d map[string]any) { sub(d, "regionBaseUrls")["EU"] = "http://eu.example.com" }, "regionBaseUrls.EU", "must be https", true},
		{"RegionURLDuplicate", func(d map[string]any) { sub(d, "regionBaseUrls")["US"] = "https://EU.app.example.com/" }, "regionBaseUrls.US", "same URL as regionBaseUrls.EU", false},
		{"RegionURLSameAsBaseURL", func(d map[string]any) { sub(d, "regionBaseUrls")["EU"] = "https://app.example.com/" }, "regionBaseUrls.EU", "same URL as baseUrl", false},
		{"LifecycleNotObject", func(d map[string]any) { d["lifecycle"] = "/installed" }, "lifecycle", "must be an object of hook name to path, got a string", false},
		{"LifecyclePathRelative", func(d map[string]any) { sub(d, "lifecycle")["installed"] = "installed" }, "lifecycle.installed", `must be a path starting with "/" (relative to the base URL), got "installed"`, false},
		{"LifecyclePathAbsoluteURL", func(d map[string]any) { sub(d, "lifecycle")["enabled"] = "https://x.example.com/enabled" }, "lifecycle.enabled", `must be a path starting with "/"`, false},
		{"LifecyclePathNotString", func(d map[string]any) { sub(d, "lifecycle")["disabled"] = true }, "lifecycle.disabled", "must be a string path, got a boolean", false},
		{"DareWithoutSignedInstall", func(d map[string]any) { delete(d, "apiMigrations") }, "apiMigrations.signed-install", "must be true when regionBaseUrls or lifecycle.dare-migration is set", false},
		{"DareWithSignedInstallFalse", func(d map[string]any) { sub(d, "apiMigrations")["signed-install"] = false }, "apiMigrations.signed-install", "must be true when regionBaseUrls or lifecycle.dare-migration is set", false},
		{"DareWithSignedInstallString", func(d map[string]any) { sub(d, "apiMigrations")["signed-install"] = "true" }, "apiMigrations.signed-install", "must be true when regionBaseUrls or lifecycle.dare-migration is set", false},
		{"RegionsWithoutDare", func(d map[string]any) { delete(sub(d, "lifecycle"), "dare-migration") }, "lifecycle.dare-migration", "required when regionBaseUrls is set", false},
		{"InstalledMissing", func(d map[string]any) { delete(sub(d, "lifecycle"), "installed") }, "lifecycle.installed", "required: the host installs the app through it", false},
		{"UninstalledMissing", func(d map[string]any) { delete(sub(d, "lifecycle"), "uninstalled") }, "lifecycle.uninstalled", "required", false},
		{"EnabledMissingIsFine", func(d map[string]any) { delete(sub(d, "lifecycle"), "enabled") }, "", "", false},
		{"APIMigrationsNotObject", func(d map[string]any) { d["apiMigrations"] = true }, "apiMigrations", "must be an object, got a boolean", false},
		{"MaxHoursTooLow", func(d map[string]any) { sub(d, "dataResidency")["maxMigrationDurationHours"] = 0.25 }, "dataResidency.maxMigrationDurationHours", "must be from 0.5 to 24 hours in steps of 0.5, got 0.25", false},
		{"MaxHoursTooHigh", func(d map[string]any) { sub(d, "dataResidency")["maxMigrationDurationHours"] = 25 }, "dataResidency.maxMigrationDurationHours", "must be from 0.5 to 24 hours in steps of 0.5, got 25", false},
		{"MaxHoursNotAStep", func(d map[string]any) { sub(d, "dataResidency")["maxMigrationDurationHours"] = 1.25 }, "dataResidency.maxMigrationDurationHours", "must be from 0.5 to 24 hours in steps of 0.5, got 1.25", false},
		{"MaxHoursStep", func(d map[string]any) { sub(d, "dataResidency")["maxMigrationDurationHours"] = 1.5 }, "", "", false},
		{"MaxHoursLowerBound", func(d map[string]any) { sub(d, "dataResidency")["maxMigrationDurationHours"] = 0.5 }, "", "", false},
		{"MaxHoursNotNumber", func(d map[string]any) { sub(d, "dataResidency")["maxMigrationDurationHours"] = "2" }, "dataResidency.maxMigrationDurationHours", "must be a number of hours, got a string", false},
		{"DataResidencyNotObject", func(d map[string]any) { d["dataResidency"] = 2 }, "dataResidency", "must be an object, got a number", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := goodDescriptor()
			tt.mutate(d)
			b := mustJSON(t, d)
			got := Lint(b)
			if tt.path == "" {
				if len(got) != 0 {
					t.Fatalf("Lint = %v, want no problems", got)
				}
				if err := Validate(b); err != nil {
					t.Errorf("Validate = %v, want nil", err)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("Lint = %v, want exactly one problem at %s", got, tt.path)
			}
			p := got[0]
			if p.Path != tt.path || !strings.Contains(p.Message, tt.message) || p.Advisory != tt.advisory {
				t.Errorf("Lint = %+v, want path %q, message containing %q, advisory %v", p, tt.path, tt.message, tt.advisory)
			}
			err := Validate(b)
			if tt.advisory {
				if err != nil {
					t.Errorf("Validate = %v, want nil for an advisory problem", err)
				}
				return
			}
			if realmhook.ErrorCode(err) != realmhook.EINVALID || !strings.Contains(err.Error(), tt.path+": "+tt.message) {
				t.Errorf("Validate = %v, want EINVALID naming %s", err, tt.path)
			}
		})
	}
}

func TestLint_Document(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"Empty", ``, "invalid JSON: EOF"},
		{"Truncated", `{"key": "a"`, "invalid JSON:"},
		{"Trailing", `{} {}`, "invalid JSON: data after the top-level value"},
		{"Array", `[1]`, "must be a JSON object"},
		{"Null", `null`, "must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Lint([]byte(tt.in))
			if len(got) != 1 || got[0].Path != "$" || !strings.Contains(got[0].Message, tt.want) {
				t.Errorf("Lint = %v, want one problem at $ containing %q", got, tt.want)
			}
		})
	}
}

func TestLint_ReportsEveryProblemInOrder(t *testing.T) {
	b := []byte(`{"key": "bad key!", "baseUrl": "http://app.example.com",
		"regionBaseUrls": {"UK": "https://uk.example.com", "AU": "nope"},
		"lifecycle": {"dare-migration": "dr"}, "dataResidency": {"maxMigrationDurationHours": 48}}`)
	var got []string
	for _, p := range Lint(b) {
		got = append(got, p.Path)
	}
	want := []string{"key", "name", "baseUrl", "authentication.type", "regionBaseUrls.AU", "regionBaseUrls.UK",
		"lifecycle.dare-migration", "lifecycle.installed", "lifecycle.uninstalled", "apiMigrations.signed-install", "dataResidency.maxMigrationDurationHours"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problem paths = %v\nwant %v", got, want)
	}
	err := Validate(b)
	if err == nil || !strings.Contains(err.Error(), "descriptor: key: may hold only") || !strings.Contains(err.Error(), "and 8 more") {
		t.Errorf("Validate = %v, want the first problem and a count of the other non-advisory ones", err)
	}
}

// TestLint_NoResidency: a descriptor without regions, dare-migration or
// signed install is one the host accepts but cannot migrate; conformance fails
// it, so lint warns of each, and Validate lets it pass.
func TestLint_NoResidency(t *testing.T) {
	d := goodDescriptor()
	delete(d, "regionBaseUrls")
	delete(sub(d, "lifecycle"), "dare-migration")
	delete(d, "apiMigrations")
	b := mustJSON(t, d)
	var got []string
	for _, p := range Lint(b) {
		if !p.Advisory {
			t.Errorf("%s is not advisory", p)
		}
		got = append(got, p.Path)
	}
	if want := []string{"regionBaseUrls", "lifecycle.dare-migration", "apiMigrations.signed-install"}; !reflect.DeepEqual(got, want) {
		t.Errorf("problem paths = %v, want %v", got, want)
	}
	if err := Validate(b); err != nil {
		t.Errorf("Validate = %v, want nil", err)
	}
}

// TestLint_Template: the repository's own atlassian-connect.json is a
// template ({{baseUrl}}): lint passes it, and warns of what Build replaces.
func TestLint_Template(t *testing.T) {
	if !IsTemplate(realmhook.DescriptorTemplate) {
		t.Fatal("the repository's atlassian-connect.json is not seen as a template")
	}
	if p := Lint(realmhook.DescriptorTemplate); len(p) != 0 {
		t.Fatalf("Lint(atlassian-connect.json) = %v, want no problems", p)
	}
	built, err := Build(realmhook.DescriptorTemplate, "https://app.example.com", map[string]string{"EU": "https://eu.app.example.com"}, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if IsTemplate(built) {
		t.Fatal("a built descriptor is seen as a template")
	}

	d := goodDescriptor()
	d["baseUrl"] = "{{baseUrl}}"
	sub(d, "apiMigrations")["signed-install"] = false
	delete(sub(d, "lifecycle"), "dare-migration")
	sub(d, "dataResidency")["maxMigrationDurationHours"] = 30
	var got []string
	for _, p := range Lint(mustJSON(t, d)) {
		got = append(got, fmt.Sprintf("%s advisory=%v", p.Path, p.Advisory))
	}
	want := []string{
		"regionBaseUrls advisory=true",                           // replaced by config's realms
		"apiMigrations.signed-install advisory=true",             // set to true
		"dataResidency.maxMigrationDurationHours advisory=false", // kept, so checked
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("template problems = %v\nwant %v", got, want)
	}
}
