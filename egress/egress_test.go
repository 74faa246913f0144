package egress_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/egress"
	"github.com/realmhook/realmhook/hostsim"
	"github.com/realmhook/realmhook/realms"
	"github.com/realmhook/realmhook/store/sqlite"
)

const (
	identitySecret = "0123456789abcdef0123456789abcdef"
	appKey         = "com.example.app"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// statusOf stands in for the HTTP layer's error table in these tests.
var statusOf = map[string]int{
	realmhook.EINVALID: 400, realmhook.EUNAUTHORIZED: 401, realmhook.ENOTFOUND: 404,
	realmhook.EMISDIRECTED: 421, realmhook.EUPSTREAM: 502, realmhook.EUPSTREAMTIMEOUT: 504,
}

func writeError(w http.ResponseWriter, _ *http.Request, err error) {
	status, ok := statusOf[realmhook.ErrorCode(err)]
	if !ok {
		status = 500
	}
	body := map[string]any{"error": realmhook.ErrorCode(err), "message": realmhook.ErrorMessage(err)}
	var e *realmhook.Error
	if errors.As(err, &e) {
		for k, v := range e.Fields {
			body[k] = v
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

type fixture struct {
	egress     string // the egress listener's URL
	product    string
	productSrv *httptest.Server
	now        time.Time
}

// newFixture runs the host's product stub with tenants acme (served here)
// and gone (moved to US), a realm EU that holds them, and egress in front.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	host := hostsim.New()
	product := httptest.NewServer(host.Product())
	t.Cleanup(product.Close)
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "eu.db"), sqlite.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, ck := range []string{"acme", "gone"} {
		site := product.URL + hostsim.SitesPath + ck
		secret := "shared-secret-of-" + ck
		if err := host.RecordTenant(hostsim.Tenant{ClientKey: ck, SharedSecret: secret, AppKey: appKey, SiteURL: site, Realm: "EU", Installed: true}); err != nil {
			t.Fatal(err)
		}
		tn := &realmhook.Tenant{ClientKey: ck, SharedSecret: secret, BaseURL: site, AppKey: appKey, State: realmhook.TenantActive}
		if ck == "gone" {
			tn.State, tn.MovedTo = realmhook.TenantMoved, "US"
		}
		if err := st.PutTenant(t.Context(), tn); err != nil {
			t.Fatal(err)
		}
	}
	eu, err := realms.NewRealm("EU", "http://localhost/realms/eu", st)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := realms.NewRegistry(eu)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{product: product.URL, productSrv: product, now: time.Now()}
	h, err := egress.New(egress.Options{Secret: []byte(identitySecret), Leeway: time.Second, Realms: reg, AppKey: appKey,
		Timeout: 5 * time.Second, Now: func() time.Time { return f.now }, Error: writeError,
		Log: func(*http.Request) *slog.Logger { return quiet }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.egress = srv.URL
	return f
}

// token is an egress token the app signs.
func (f *fixture) token(t *testing.T, secret, sub, aud string, iat time.Time, life time.Duration) string {
	t.Helper()
	c := jwt.RegisteredClaims{Subject: sub, IssuedAt: jwt.NewNumericDate(iat), ExpiresAt: jwt.NewNumericDate(iat.Add(life))}
	if aud != "" {
		c.Audience = jwt.ClaimStrings{aud}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) good(t *testing.T, sub string) string {
	return f.token(t, identitySecret, sub, egress.Audience, f.now, 60*time.Second)
}

// call sends one egress call and returns its status and JSON body.
func (f *fixture) call(t *testing.T, method, path, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.egress+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("X-Realmhook-Identity", "must-not-reach-the-product")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("%s %s: %d with non-JSON %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, body
}

func TestEgress_SignsForTheTenantAndForwards(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	status, body := f.call(t, "GET", "/host/acme/rest/api/3/myself", f.good(t, "acme"))
	if status != 200 || body["accountId"] != "app:"+appKey {
		t.Fatalf("myself = %d %v", status, body)
	}
	// The query is part of what the product checks (qsh).
	status, body = f.call(t, "GET", "/host/acme/rest/api/3/serverInfo?expand=a%20b&z=1&a=2", f.good(t, "acme"))
	if status != 200 || body["baseUrl"] != f.product+hostsim.SitesPath+"acme" {
		t.Fatalf("serverInfo = %d %v", status, body)
	}
	// The product's own refusals come back as they are.
	if status, body = f.call(t, "GET", "/host/acme/rest/api/3/nothing", f.good(t, "acme")); status != 404 || body["error"] != "not_found" {
		t.Fatalf("unknown product route = %d %v", status, body)
	}
}

func TestEgress_Refusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	uniform := func() string {
		_, b := f.call(t, "GET", "/host/acme/rest/api/3/myself", "")
		return b["message"].(string)
	}()
	tests := []struct {
		name, method, path string
		token              string
		status             int
		code, says         string
	}{
		{"NoToken", "GET", "/host/acme/rest/api/3/myself", "", 401, realmhook.EUNAUTHORIZED, uniform},
		{"Garbage", "GET", "/host/acme/rest/api/3/myself", "not.a.jwt", 401, realmhook.EUNAUTHORIZED, uniform},
		{"WrongSecret", "GET", "/host/acme/rest/api/3/myself", f.token(t, strings.Repeat("x", 32), "acme", egress.Audience, f.now, time.Minute), 401, realmhook.EUNAUTHORIZED, uniform},
		{"OtherTenantsToken", "GET", "/host/acme/rest/api/3/myself", f.good(t, "gone"), 401, realmhook.EUNAUTHORIZED, "another tenant"},
		{"Expired", "GET", "/host/acme/rest/api/3/myself", f.token(t, identitySecret, "acme", egress.Audience, f.now.Add(-2*time.Minute), time.Minute), 401, realmhook.EUNAUTHORIZED, "expired"},
		{"LivesTooLong", "GET", "/host/acme/rest/api/3/myself", f.token(t, identitySecret, "acme", egress.Audience, f.now, 61*time.Second), 401, realmhook.EUNAUTHORIZED, "at most 1m0s"},
		{"NotForEgress", "GET", "/host/acme/rest/api/3/myself", f.token(t, identitySecret, "acme", "", f.now, time.Minute), 401, realmhook.EUNAUTHORIZED, "aud"},
		{"DotSegments", "GET", "/host/acme/rest/../../other-site/rest/api/3/myself", f.good(t, "acme"), 400, realmhook.EINVALID, "dot segment"},
		{"EncodedDotSegments", "GET", "/host/acme/%2e%2e/other-site", f.good(t, "acme"), 400, realmhook.EINVALID, "dot segment"},
		{"EncodedSlash", "GET", "/host/acme/rest%2F..%2Fx", f.good(t, "acme"), 400, realmhook.EINVALID, "encoded /"},
		{"JWTInQuery", "GET", "/host/acme/rest/api/3/myself?jwt=x", f.good(t, "acme"), 400, realmhook.EINVALID, "jwt"},
		{"NotUnderHost", "GET", "/rest/api/3/myself", f.good(t, "acme"), 404, realmhook.ENOTFOUND, "/host/"},
		{"UnknownTenant", "GET", "/host/nobody/rest/api/3/myself", f.good(t, "nobody"), 404, realmhook.ENOTFOUND, "nobody"},
		{"MovedTenant", "GET", "/host/gone/rest/api/3/myself", f.good(t, "gone"), 421, realmhook.EMISDIRECTED, "realm US"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := f.call(t, tt.method, tt.path, tt.token)
			if status != tt.status || body["error"] != tt.code || !strings.Contains(body["message"].(string), tt.says) {
				t.Fatalf("%s %s = %d %v; want %d %s saying %q", tt.method, tt.path, status, body, tt.status, tt.code, tt.says)
			}
			if tt.status == 421 && body["expectedRealm"] != "US" {
				t.Fatalf("421 body %v lacks expectedRealm US", body)
			}
		})
	}
}

func TestEgress_ProductDownIs502(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// The stub stops; the site URL now leads nowhere.
	f.productSrv.Close()
	status, body := f.call(t, "GET", "/host/acme/rest/api/3/myself", f.good(t, "acme"))
	if status != 502 || body["error"] != realmhook.EUPSTREAM {
		t.Fatalf("product down = %d %v, want 502 %s", status, body, realmhook.EUPSTREAM)
	}
}
