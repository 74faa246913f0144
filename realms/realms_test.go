package realms

import (
	"testing"

	"github.com/realmhook/realmhook"
)

func mustRealm(t *testing.T, key, baseURL string, served bool) *Realm {
	t.Helper()
	r, err := NewRealm(key, baseURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if served {
		r.Store = fakeServed{}
	}
	return r
}

func TestRegistry_Match(t *testing.T) {
	embedded, err := NewRegistry(
		mustRealm(t, "global", "http://localhost:8080", true),
		mustRealm(t, "US", "http://localhost:8080/realms/us", true),
		mustRealm(t, "EU", "http://localhost:8080/realms/eu/", true),
		mustRealm(t, "AU", "http://localhost:8080/realms/au", false),
	)
	if err != nil {
		t.Fatal(err)
	}
	regional, err := NewRegistry(
		mustRealm(t, "global", "https://app.example.com", true),
		mustRealm(t, "EU", "https://eu.app.example.com", true),
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		reg  *Registry
		host string
		path string
		want string // "" for no match
	}{
		{"Root", embedded, "localhost:8080", "/installed", "global"},
		{"Nested", embedded, "localhost:8080", "/realms/us/installed", "US"},
		{"NestedExact", embedded, "localhost:8080", "/realms/eu", "EU"},
		{"TrailingSlashBase", embedded, "localhost:8080", "/realms/eu/api/v1/properties/x", "EU"},
		{"SegmentBoundary", embedded, "localhost:8080", "/realms/usa/installed", "global"},
		{"UnservedFallsToGlobal", embedded, "localhost:8080", "/realms/au/installed", "global"},
		{"HostPicksRegional", regional, "eu.app.example.com", "/installed", "EU"},
		{"HostPicksGlobal", regional, "app.example.com", "/installed", "global"},
		{"UnknownHost", regional, "evil.example.com", "/installed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.reg.Match(tc.host, tc.path, tc.path)
			ok := err == nil
			switch {
			case tc.want == "" && ok:
				t.Fatalf("matched %s, want no match", got.Key)
			case tc.want != "" && !ok:
				t.Fatalf("no match, want %s", tc.want)
			case ok && got.Key != tc.want:
				t.Fatalf("matched %s, want %s", got.Key, tc.want)
			}
		})
	}
}

func TestRegistry_MatchAmbiguous(t *testing.T) {
	reg, err := NewRegistry(
		mustRealm(t, "global", "http://localhost:8080", true),
		mustRealm(t, "EU", "http://localhost:8080/realms/eu", true),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ raw, path, want string }{
		{"/realms/%65u/x", "/realms/eu/x", realmhook.EINVALID},
		{"/realms%2Feu/x", "/realms/eu/x", realmhook.EINVALID},
		{"/realms/eu/%78", "/realms/eu/x", ""},
		{"/realms/%45U/x", "/realms/EU/x", ""},
	} {
		_, err := reg.Match("localhost:8080", tc.raw, tc.path)
		if got := realmhook.ErrorCode(err); got != tc.want {
			t.Errorf("Match(%q, %q): %v, want code %q", tc.raw, tc.path, err, tc.want)
		}
	}
}

func TestRegistry_Listings(t *testing.T) {
	g, err := NewRegistry(
		mustRealm(t, "US", "http://h/realms/us", true),
		mustRealm(t, "global", "http://h", true),
		mustRealm(t, "EU", "http://h/realms/eu", false),
	)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range g.All() {
		keys = append(keys, r.Key)
	}
	if got := join(keys); got != "global,EU,US" {
		t.Fatalf("All() = %s, want global first then sorted", got)
	}
	if got := join(g.BasePaths()); got != ",/realms/us" {
		t.Fatalf("BasePaths() = %q, want only served realms", got)
	}
	if got := join(g.BaseURLs()); got != "http://h,http://h/realms/eu,http://h/realms/us" {
		t.Fatalf("BaseURLs() = %s", got)
	}
	if _, err := NewRegistry(mustRealm(t, "US", "http://a", false), mustRealm(t, "US", "http://b", false)); err == nil {
		t.Fatal("duplicate realm key accepted")
	}
	if _, err := NewRealm("US", "ftp://x", nil); err == nil {
		t.Fatal("non-http base URL accepted")
	}
}

func join(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}
