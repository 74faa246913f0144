package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/realmhook/realmhook/connectjwt"
)

// TestFoundation_InstallWriteReadMisroute is the foundation's promise end to
// end: a tenant installed into EU by a genuinely signed install reads and
// writes its properties in EU, and is told to go to EU when it calls US.
func TestFoundation_InstallWriteReadMisroute(t *testing.T) {
	forEachLayout(t, []layout{allSQLite, allPostgres}, testInstallWriteReadMisroute)
}

func testInstallWriteReadMisroute(t *testing.T, l layout) {
	ks := mustKeyServer(t)
	s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: mustRealmDBs(t, l).databases()})
	ten := newTenant(t)

	t.Run("DescriptorPublishesRealms", func(t *testing.T) {
		r := do(t, http.MethodGet, s.Base+"/atlassian-connect.json", nil, nil)
		mustStatus(t, r, http.StatusOK, "descriptor")
		var d struct {
			BaseURL        string            `json:"baseUrl"`
			RegionBaseURLs map[string]string `json:"regionBaseUrls"`
			APIMigrations  map[string]bool   `json:"apiMigrations"`
			Lifecycle      map[string]string `json:"lifecycle"`
		}
		if err := json.Unmarshal(r.Body, &d); err != nil {
			t.Fatal(err)
		}
		if d.BaseURL != s.Base || d.RegionBaseURLs["US"] != s.realmURL("US") || d.RegionBaseURLs["EU"] != s.realmURL("EU") {
			t.Fatalf("descriptor urls: baseUrl %q regionBaseUrls %v", d.BaseURL, d.RegionBaseURLs)
		}
		if !d.APIMigrations["signed-install"] || d.Lifecycle["dare-migration"] == "" {
			t.Fatalf("descriptor: apiMigrations %v lifecycle %v", d.APIMigrations, d.Lifecycle)
		}
		// The same descriptor is served under each realm's base URL.
		r2 := do(t, http.MethodGet, s.realmURL("EU")+"/atlassian-connect.json", nil, nil)
		if string(r2.Body) != string(r.Body) {
			t.Fatalf("EU descriptor differs from global's")
		}
	})

	mustInstall(t, s, ks, ten, "EU")

	t.Run("WriteAndReadInPinnedRealm", func(t *testing.T) {
		r := call(t, s, ten, "EU", http.MethodPut, "/api/v1/properties/colour", []byte(`{"hue":"blue"}`))
		mustStatus(t, r, http.StatusCreated, "put")
		if r.Header.Get("X-Realm") != "EU" {
			t.Fatalf("X-Realm %q, want EU", r.Header.Get("X-Realm"))
		}
		r = call(t, s, ten, "EU", http.MethodPut, "/api/v1/properties/colour", []byte(`{"hue":"green"}`))
		mustStatus(t, r, http.StatusOK, "replace")
		r = call(t, s, ten, "EU", http.MethodGet, "/api/v1/properties/colour", nil)
		mustStatus(t, r, http.StatusOK, "get")
		if got := r.JSON(t)["value"].(map[string]any)["hue"]; got != "green" {
			t.Fatalf("value hue %v, want green", got)
		}
		for _, k := range []string{"a/1", "a/2", "b/1"} {
			mustStatus(t, call(t, s, ten, "EU", http.MethodPut, "/api/v1/properties/"+k, []byte(`1`)), http.StatusCreated, "put "+k)
		}
		r = call(t, s, ten, "EU", http.MethodGet, "/api/v1/properties?prefix=a%2F&limit=1", nil)
		mustStatus(t, r, http.StatusOK, "list")
		page := r.JSON(t)
		props := page["properties"].([]any)
		if len(props) != 1 || props[0].(map[string]any)["key"] != "a/1" || page["nextCursor"] == nil {
			t.Fatalf("first page %s", r.Body)
		}
		r = call(t, s, ten, "EU", http.MethodGet, "/api/v1/properties?prefix=a%2F&limit=1&cursor="+url.QueryEscape(page["nextCursor"].(string)), nil)
		props = r.JSON(t)["properties"].([]any)
		if len(props) != 1 || props[0].(map[string]any)["key"] != "a/2" {
			t.Fatalf("second page %s", r.Body)
		}
		mustStatus(t, call(t, s, ten, "EU", http.MethodDelete, "/api/v1/properties/b/1", nil), http.StatusNoContent, "delete")
		mustStatus(t, call(t, s, ten, "EU", http.MethodGet, "/api/v1/properties/b/1", nil), http.StatusNotFound, "get deleted")
	})

	t.Run("OtherRealmAnswers421", func(t *testing.T) {
		r := call(t, s, ten, "US", http.MethodGet, "/api/v1/properties/colour", nil)
		mustStatus(t, r, http.StatusMisdirectedRequest, "US call")
		body := r.JSON(t)
		if body["error"] != "misdirected_request" || body["expectedRealm"] != "EU" || body["actualRealm"] != "US" || body["correctBaseUrl"] != s.realmURL("EU") {
			t.Fatalf("421 body %s", r.Body)
		}
		if r.Header.Get("X-Realm") != "US" {
			t.Fatalf("X-Realm %q on 421, want US", r.Header.Get("X-Realm"))
		}
		// Global is another realm too.
		mustStatus(t, call(t, s, ten, "global", http.MethodGet, "/api/v1/properties/colour", nil), http.StatusMisdirectedRequest, "global call")
	})

	t.Run("OneTenantOneRealm", func(t *testing.T) {
		r := signedInstall(t, s, ks, ten, "US", "installed")
		mustStatus(t, r, http.StatusConflict, "install into US while pinned to EU")
		if body := r.JSON(t); body["pinnedRealm"] != "EU" {
			t.Fatalf("409 body %s", r.Body)
		}
	})

	t.Run("ReinstallReplacesSecret", func(t *testing.T) {
		rotated := tenant{ClientKey: ten.ClientKey, Secret: newTenant(t).Secret}
		mustInstall(t, s, ks, rotated, "EU")
		mustStatus(t, call(t, s, ten, "EU", http.MethodGet, "/api/v1/properties/colour", nil), http.StatusUnauthorized, "old secret")
		r := call(t, s, rotated, "EU", http.MethodGet, "/api/v1/properties/colour", nil)
		mustStatus(t, r, http.StatusOK, "new secret keeps the data")
		ten = rotated
	})

	t.Run("Metrics", func(t *testing.T) {
		r := do(t, http.MethodGet, s.Base+"/metrics", nil, nil)
		mustStatus(t, r, http.StatusOK, "metrics")
		for _, want := range []string{"realmhook_http_requests_total", "realmhook_misdirected_requests_total", "realmhook_jwt_rejections_total"} {
			if !strings.Contains(string(r.Body), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})

	t.Run("NoSecretOrTokenLogged", func(t *testing.T) {
		out := s.Output()
		if strings.Contains(out, ten.Secret) {
			t.Fatal("the shared secret appears in the server's output")
		}
		if strings.Contains(out, "eyJ") {
			t.Fatal("something that looks like a JWT appears in the server's output")
		}
	})
}

// TestFoundation_BadInput sends what a careless or hostile caller would; each
// gets a clear 4xx JSON error and never a 5xx.
func TestFoundation_BadInput(t *testing.T) {
	forEachLayout(t, []layout{allSQLite, allPostgres}, testBadInput)
}

func testBadInput(t *testing.T, l layout) {
	ks := mustKeyServer(t)
	s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: mustRealmDBs(t, l).databases()})
	ten := newTenant(t)
	mustInstall(t, s, ks, ten, "EU")
	eu := s.realmURL("EU")
	propURL := eu + "/api/v1/properties/k"

	hs := func(secret, iss, method, u string) string {
		tok, err := connectjwt.Signer{}.HS256([]byte(secret), iss, method, u, eu)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other := newTenant(t)
	mustInstall(t, s, ks, other, "EU")

	cases := []struct {
		name   string
		method string
		url    string
		header http.Header
		body   []byte
		status int
		code   string
	}{
		{"NoToken", "GET", propURL, nil, nil, 401, "unauthorized"},
		{"WrongSecret", "GET", propURL, authz(hs("not-the-secret", ten.ClientKey, "GET", propURL)), nil, 401, "unauthorized"},
		{"AlgNone", "GET", propURL, authz(algNoneToken(ten.ClientKey)), nil, 401, "unauthorized"},
		{"RS256WhereHS256", "GET", propURL, authz(rs256Token(t, ks, ten.ClientKey, "GET", propURL, eu)), nil, 401, "unauthorized"},
		{"Expired", "GET", propURL, authz(expiredToken(t, ten, "GET", propURL, eu)), nil, 401, "unauthorized"},
		{"QSHForAnotherPath", "GET", propURL, authz(hs(ten.Secret, ten.ClientKey, "GET", eu+"/api/v1/properties/other")), nil, 401, "unauthorized"},
		{"AnotherTenantsIss", "GET", propURL, authz(hs(ten.Secret, other.ClientKey, "GET", propURL)), nil, 401, "unauthorized"},
		{"TokenInHeaderAndQuery", "GET", propURL + "?jwt=" + hs(ten.Secret, ten.ClientKey, "GET", propURL), authz(hs(ten.Secret, ten.ClientKey, "GET", propURL)), nil, 401, "unauthorized"},
		{"GarbageToken", "GET", propURL, authz("not.a.jwt"), nil, 401, "unauthorized"},
		{"MalformedJSONValue", "PUT", propURL, authz(hs(ten.Secret, ten.ClientKey, "PUT", propURL)), []byte(`{"a":`), 400, "invalid"},
		{"BodyOver1MiB", "PUT", propURL, authz(hs(ten.Secret, ten.ClientKey, "PUT", propURL)), []byte(`"` + strings.Repeat("x", 1<<20+10) + `"`), 413, "too_large"},
		{"ValueOver32KiB", "PUT", propURL, authz(hs(ten.Secret, ten.ClientKey, "PUT", propURL)), []byte(`"` + strings.Repeat("x", 33<<10) + `"`), 413, "too_large"},
		{"KeyOver255Bytes", "PUT", eu + "/api/v1/properties/" + strings.Repeat("k", 256), authz(hs(ten.Secret, ten.ClientKey, "PUT", eu+"/api/v1/properties/"+strings.Repeat("k", 256))), []byte(`1`), 400, "invalid"},
		{"BadLimit", "GET", eu + "/api/v1/properties?limit=0", authz(hs(ten.Secret, ten.ClientKey, "GET", eu+"/api/v1/properties?limit=0")), nil, 400, "invalid"},
		{"BadCursor", "GET", eu + "/api/v1/properties?cursor=%25%25", authz(hs(ten.Secret, ten.ClientKey, "GET", eu+"/api/v1/properties?cursor=%25%25")), nil, 400, "invalid"},
		{"UnknownRealmPath", "GET", s.Base + "/realms/zz/api/v1/properties/k", nil, nil, 404, "not_found"},
		{"InstallMalformedJSON", "POST", eu + "/installed", authz(installToken(t, ks, ks.Kid, ten.ClientKey, eu)), []byte(`{not json`), 400, "invalid"},
		{"InstallKidWithSlash", "POST", eu + "/installed", authz(installToken(t, ks, "a/b", ten.ClientKey, eu)), installBody(ten, "installed"), 401, "unauthorized"},
		{"InstallKidWithDotDot", "POST", eu + "/installed", authz(installToken(t, ks, "..", ten.ClientKey, eu)), installBody(ten, "installed"), 401, "unauthorized"},
		{"InstallUnknownKid", "POST", eu + "/installed", authz(installToken(t, ks, "no-such-key", ten.ClientKey, eu)), installBody(ten, "installed"), 401, "unauthorized"},
		{"InstallHS256", "POST", eu + "/installed", authz(hs(ten.Secret, ten.ClientKey, "POST", eu+"/installed")), installBody(ten, "installed"), 401, "unauthorized"},
		{"InstallIssNotClientKey", "POST", eu + "/installed", authz(installToken(t, ks, ks.Kid, other.ClientKey, eu)), installBody(ten, "installed"), 401, "unauthorized"},
		{"HookContextQSH", "POST", eu + "/dare-migration/schedule", authz(contextToken(t, ten)), []byte(`{}`), 401, "unauthorized"},
		{"PropertyContextQSHAccepted", "GET", eu + "/api/v1/properties?limit=1", authz(contextToken(t, ten)), nil, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, tc.url, tc.header, tc.body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d; body %s", r.Status, tc.status, r.Body)
			}
			if tc.code == "" {
				return
			}
			body := r.JSON(t)
			if body["error"] != tc.code || body["message"] == "" {
				t.Fatalf("body %s, want error %q with a message", r.Body, tc.code)
			}
		})
	}
}

func authz(tok string) http.Header { return http.Header{"Authorization": {"JWT " + tok}} }

func algNoneToken(iss string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64URL(b)
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + enc(map[string]any{"iss": iss, "exp": 9999999999, "iat": 1, "qsh": "x"}) + "."
}

func rs256Token(t *testing.T, ks *keyServer, iss, method, u, base string) string {
	tok, err := connectjwt.Signer{}.RS256(ks.Key, ks.Kid, iss, base, method, u, base)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func installToken(t *testing.T, ks *keyServer, kid, iss, base string) string {
	t.Helper()
	if !connectjwt.ValidKeyID(kid) {
		return forgeKid(t, ks, kid, iss, base)
	}
	return rs256Token(t, &keyServer{Kid: kid, Key: ks.Key}, iss, http.MethodPost, base+"/installed", base)
}

func expiredToken(t *testing.T, ten tenant, method, u, base string) string {
	tok, err := connectjwt.Signer{Now: func() time.Time { return time.Now().Add(-time.Hour) }}.HS256([]byte(ten.Secret), ten.ClientKey, method, u, base)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func contextToken(t *testing.T, ten tenant) string {
	tok, err := connectjwt.Signer{}.HS256Context([]byte(ten.Secret), ten.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
