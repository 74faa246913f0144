package hooks

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/identity"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/realms"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/sqlite"
)

// testKeys is a KeySource that knows one kid.
type testKeys struct {
	kid string
	key *rsa.PrivateKey
}

func (k testKeys) PublicKey(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if kid != k.kid {
		return nil, &connectjwt.RejectError{Reason: connectjwt.ReasonKeyFetch, Detail: "unknown kid"}
	}
	return &k.key.PublicKey, nil
}

// env is a Server over SQLite realms global, US and EU, served by httptest.
type env struct {
	t      *testing.T
	url    string
	keys   testKeys
	realms *realms.Registry
	// skew moves the migration engine's clock ahead of real time, for the
	// tests that need its caches to have gone stale.
	skew atomic.Int64
}

// skip moves the engine's clock d ahead.
func (e *env) skip(d time.Duration) { e.skew.Add(int64(d)) }

func mustEnv(t *testing.T, keySource connectjwt.KeySource, with ...func(*Options)) *env {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, keys: testKeys{kid: "k1", key: key}}
	if keySource == nil {
		keySource = e.keys
	}
	srv := httptest.NewUnstartedServer(nil)
	e.url = "http://" + srv.Listener.Addr().String()
	dir := t.TempDir()
	served := map[string]store.Store{}
	peers := map[string]migration.Peer{}
	var list []*realms.Realm
	for key, path := range map[string]string{"global": "", "US": "/realms/us", "EU": "/realms/eu"} {
		s, err := sqlite.Open(context.Background(), filepath.Join(dir, key+".db"), sqlite.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		r, err := realms.NewRealm(key, e.url+path, s)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, r)
		served[key], peers[key] = s, migration.LocalPeer(s)
	}
	e.realms, err = realms.NewRegistry(list...)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := migration.New(migration.Config{Enabled: true, MaxConcurrent: 5}, served, peers, migration.Options{Logger: logger,
		Now: func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }})
	opts := Options{
		Realms:      e.realms,
		Descriptor:  []byte(`{"key":"app"}`),
		AppKey:      "app",
		Lifecycle:   Lifecycle{Installed: "/installed", Uninstalled: "/uninstalled", Enabled: "/enabled", Disabled: "/disabled", DareMigration: "/dare-migration"},
		Migrations:  svc,
		Verifier:    connectjwt.Verifier{Leeway: time.Second},
		InstallKeys: keySource,
		Logger:      logger,
	}
	for _, w := range with {
		w(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = s.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return e
}

func (e *env) base(realm string) string {
	r, _ := e.realms.Get(realm)
	return r.BaseURL
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func (e *env) send(method, url, token string, body []byte) reply {
	e.t.Helper()
	status, header, raw := e.do(method, url, token, body)
	r := reply{status: status, header: header}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.t.Fatalf("%s %s answered %d with non-JSON %q", method, url, status, raw)
		}
	}
	return r
}

// do sends one request, with the token in the Authorization header when
// there is one, and returns the whole answer.
func (e *env) do(method, url, token string, body []byte) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "JWT "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

func (e *env) install(realm, clientKey, secret, event string) reply {
	e.t.Helper()
	base := e.base(realm)
	url := base + "/" + event
	tok, err := connectjwt.Signer{}.RS256(e.keys.key, e.keys.kid, clientKey, base, http.MethodPost, url, base)
	if err != nil {
		e.t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"key": "app", "clientKey": clientKey, "sharedSecret": secret,
		"baseUrl": "https://site.atlassian.net", "eventType": event})
	return e.send(http.MethodPost, url, tok, body)
}

func (e *env) call(realm, clientKey, secret, method, path string, body []byte) reply {
	e.t.Helper()
	base := e.base(realm)
	tok, err := connectjwt.Signer{}.HS256([]byte(secret), clientKey, method, base+path, base)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.send(method, base+path, tok, body)
}

func mustReply(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %v", r.status, status, r.body)
	}
	if code != "" && r.body["error"] != code {
		t.Fatalf("error %v, want %s; body %v", r.body["error"], code, r.body)
	}
}

func TestServer_UninstallKeepsDataForReinstall(t *testing.T) {
	e := mustEnv(t, nil)
	mustReply(t, e.install("EU", "c1", "secret-1", "installed"), http.StatusNoContent, "")
	mustReply(t, e.call("EU", "c1", "secret-1", "PUT", "/api/v1/properties/k", []byte(`1`)), http.StatusCreated, "")

	mustReply(t, e.install("EU", "c1", "secret-1", "uninstalled"), http.StatusNoContent, "")
	mustReply(t, e.install("EU", "c1", "secret-1", "uninstalled"), http.StatusNoContent, "")
	mustReply(t, e.call("EU", "c1", "secret-1", "GET", "/api/v1/properties/k", nil), http.StatusUnauthorized, realmhook.EUNAUTHORIZED)

	mustReply(t, e.install("EU", "c1", "secret-2", "installed"), http.StatusNoContent, "")
	mustReply(t, e.call("EU", "c1", "secret-2", "GET", "/api/v1/properties/k", nil), http.StatusOK, "")
}

func TestServer_EnabledDisabled(t *testing.T) {
	e := mustEnv(t, nil)
	mustReply(t, e.install("US", "c1", "s", "installed"), http.StatusNoContent, "")
	mustReply(t, e.call("US", "c1", "s", "POST", "/enabled", nil), http.StatusNoContent, "")
	us, _ := e.realms.Get("US")
	ten, err := us.Store.GetTenant(context.Background(), "c1")
	if err != nil || !ten.Enabled {
		t.Fatalf("after enabled: %+v %v", ten, err)
	}
	mustReply(t, e.call("US", "c1", "s", "POST", "/disabled", nil), http.StatusNoContent, "")
	if ten, _ = us.Store.GetTenant(context.Background(), "c1"); ten.Enabled {
		t.Fatal("still enabled after disabled")
	}
	// A lifecycle hook never accepts a frontend's context-qsh token.
	tok, _ := connectjwt.Signer{}.HS256Context([]byte("s"), "c1")
	mustReply(t, e.send("POST", e.base("US")+"/enabled", tok, nil), http.StatusUnauthorized, realmhook.EUNAUTHORIZED)
	// Called at the wrong realm, it says where the tenant lives.
	r := e.call("EU", "c1", "s", "POST", "/enabled", nil)
	mustReply(t, r, http.StatusMisdirectedRequest, realmhook.EMISDIRECTED)
	if r.body["expectedRealm"] != "US" {
		t.Fatalf("421 body %v", r.body)
	}
}

func TestServer_FrozenTenantRefusesLifecycleChanges(t *testing.T) {
	e := mustEnv(t, nil)
	mustReply(t, e.install("EU", "c1", "s", "installed"), http.StatusNoContent, "")
	eu, _ := e.realms.Get("EU")
	ten, _ := eu.Store.GetTenant(context.Background(), "c1")
	ten.MigrationID = "m1"
	if err := eu.Store.PutTenant(context.Background(), ten); err != nil {
		t.Fatal(err)
	}
	mustReply(t, e.install("EU", "c1", "s2", "installed"), http.StatusConflict, realmhook.EMIGRATING)
	mustReply(t, e.install("EU", "c1", "s", "uninstalled"), http.StatusConflict, realmhook.EMIGRATING)
	mustReply(t, e.call("EU", "c1", "s", "POST", "/disabled", nil), http.StatusConflict, realmhook.EMIGRATING)
	mustReply(t, e.call("EU", "c1", "s", "PUT", "/api/v1/properties/k", []byte(`1`)), http.StatusConflict, realmhook.EMIGRATING)
	mustReply(t, e.call("EU", "c1", "s", "GET", "/api/v1/properties?limit=5", nil), http.StatusOK, "")
}

func TestServer_KeyServerFailuresAre401(t *testing.T) {
	t.Run("Hangs", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		defer srv.Close()
		e := mustEnv(t, &connectjwt.KeyServer{BaseURL: srv.URL, Timeout: 200 * time.Millisecond})
		start := time.Now()
		r := e.install("EU", "c1", "s", "installed")
		mustReply(t, r, http.StatusUnauthorized, realmhook.EUNAUTHORIZED)
		// Nothing is verified yet, so the reason is not told.
		if _, told := r.body["reason"]; told {
			t.Fatalf("reason %v told before the signature verified", r.body["reason"])
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("install against a hanging key server took %s", d)
		}
	})
	t.Run("Garbage", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "not a pem") }))
		defer srv.Close()
		e := mustEnv(t, &connectjwt.KeyServer{BaseURL: srv.URL})
		mustReply(t, e.install("EU", "c1", "s", "installed"), http.StatusUnauthorized, realmhook.EUNAUTHORIZED)
	})
}

func TestServer_MigrationHookBodies(t *testing.T) {
	e := mustEnv(t, nil)
	mustReply(t, e.install("EU", "c1", "s", "installed"), http.StatusNoContent, "")
	window := `"startTime":"2026-01-01T00:00:00.000Z","endTime":"2099-01-01T00:00:00.000Z"`
	tests := []struct {
		name, body string
		status     int
		response   string
	}{
		{"NotJSON", `{"migrationId":`, 400, "E9999"},
		{"NoMigrationID", `{` + window + `,"location":"US"}`, 400, "E9999"},
		{"BadTime", `{"migrationId":"m","startTime":"yesterday","endTime":"2099-01-01T00:00:00Z","location":"US"}`, 400, "E9999"},
		{"NoLocation", `{"migrationId":"m",` + window + `}`, 400, "E9999"},
		{"UnknownRealm", `{"migrationId":"m",` + window + `,"location":"ZZ"}`, 400, "E0002"},
		{"NoStartTime", `{"migrationId":"m","endTime":"2099-01-01T00:00:00Z","location":"US"}`, 400, "E9999"},
		{"BlankMigrationID", `{"migrationId":"  ",` + window + `,"location":"US"}`, 400, "E9999"},
		{"MigrationIDTooLong", `{"migrationId":"` + strings.Repeat("m", 256) + `",` + window + `,"location":"US"}`, 400, "E9999"},
		// Config refuses realm key "eu"; so must the hooks (E9999, a bad
		// request), not answer it as a realm we merely do not serve (E0002).
		{"LowerCaseLocation", `{"migrationId":"m",` + window + `,"location":"eu"}`, 400, "E9999"},
		{"NumericID", `{"migrationId":42,` + window + `,"location":"US"}`, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call("EU", "c1", "s", "POST", "/dare-migration/schedule", []byte(tc.body))
			if r.status != tc.status || (tc.response != "" && r.body["errorResponseCode"] != tc.response) {
				t.Fatalf("status %d body %v, want %d %s", r.status, r.body, tc.status, tc.response)
			}
		})
	}
	r := e.call("EU", "c1", "s", "GET", "/dare-migration/status?migrationId=42", nil)
	mustReply(t, r, http.StatusOK, "")
	if r.body["status"] != "scheduled" || r.body["migrationId"] != "42" {
		t.Fatalf("status of numeric id: %v", r.body)
	}
}

func TestServer_RoutingAndOps(t *testing.T) {
	e := mustEnv(t, nil)
	r := e.send("GET", e.url+"/realms/zz/api/v1/properties/k", "", nil)
	mustReply(t, r, http.StatusNotFound, realmhook.ENOTFOUND)
	mustReply(t, e.send("DELETE", e.url+"/installed", "", nil), http.StatusMethodNotAllowed, "method_not_allowed")
	mustReply(t, e.send("GET", e.url+"/healthz", "", nil), http.StatusOK, "")
	r = e.send("GET", e.url+"/readyz", "", nil)
	mustReply(t, r, http.StatusOK, "")
	if rs := r.body["realms"].(map[string]any); len(rs) != 3 {
		t.Fatalf("readyz realms %v", rs)
	}
	req, _ := http.NewRequest("GET", e.url+"/healthz", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "abc-123" {
		t.Fatalf("X-Request-Id %q", got)
	}
	mustReply(t, e.install("US", "c1", "s", "installed"), http.StatusNoContent, "")
	// A closed database makes the server unready, not broken: callers are
	// told to come back (503), and the host retries a hook answered so.
	us, _ := e.realms.Get("US")
	us.Store.Close()
	mustReply(t, e.call("US", "c1", "s", "GET", "/api/v1/properties/k", nil), http.StatusServiceUnavailable, realmhook.EUNAVAILABLE)
	// /status is the exception: the host rolls back on any non-2xx from it.
	r = e.call("US", "c1", "s", "GET", "/dare-migration/status?migrationId=m", nil)
	mustReply(t, r, http.StatusOK, "")
	if _, ok := r.body["errorResponseCode"]; ok || r.body["stale"] != true {
		t.Fatalf("status with the database down: %v; want a stale status without errorResponseCode, which the host treats as final", r.body)
	}
	r = e.send("GET", e.url+"/readyz", "", nil)
	mustReply(t, r, http.StatusServiceUnavailable, "")
	if r.body["realms"].(map[string]any)["US"] != "unavailable" {
		t.Fatalf("readyz body %v", r.body)
	}
	resp, err = http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Every rejection reason is exported from the start, so alerts can be
	// written against series that exist before the first rejection.
	for _, want := range []string{`realmhook_jwt_rejections_total{reason="qsh_mismatch"} 0`, `realmhook_http_requests_total{code="503",realm="global",route="/readyz"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestServer_WriteRacingCommitIs421: a write authenticated just before a
// commit lands after it; the caller is told where the tenant went, not 404.
func TestServer_WriteRacingCommitIs421(t *testing.T) {
	e := mustEnv(t, nil)
	mustReply(t, e.install("EU", "c1", "s", "installed"), http.StatusNoContent, "")
	eu, _ := e.realms.Get("EU")
	ten, err := eu.Store.GetTenant(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	auth := &identity.Identity{Called: eu, Home: eu, Tenant: ten, ClientKey: ten.ClientKey}
	// The commit lands after authentication.
	if _, err := eu.Store.UpdateTenant(context.Background(), "c1", func(tn *realmhook.Tenant) error {
		tn.State, tn.MovedTo = realmhook.TenantMoved, "US"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, werr := eu.Store.PutProperty(context.Background(), "c1", "k", []byte(`1`))
	if realmhook.ErrorCode(werr) != realmhook.ENOTFOUND {
		t.Fatalf("store write after the move: %v, want ENOTFOUND", werr)
	}
	srv := &Server{opts: Options{Realms: e.realms}, metrics: NewMetrics(), ident: identity.New(identity.Options{Realms: e.realms})}
	req := httptest.NewRequest("PUT", e.base("EU")+"/api/v1/properties/k", nil)
	got := srv.movedSince(req, auth, werr)
	if realmhook.ErrorCode(got) != realmhook.EMISDIRECTED {
		t.Fatalf("movedSince = %v, want misdirected", got)
	}
	if body := errorBody(got); body["expectedRealm"] != "US" || body["correctBaseUrl"] != e.base("US") {
		t.Fatalf("421 body %v", body)
	}
	// A plain missing property stays a 404.
	notFound := realmhook.Errorf(realmhook.ENOTFOUND, "property not found")
	other, _ := e.realms.Get("US")
	mustReply(t, e.install("US", "c2", "s", "installed"), http.StatusNoContent, "")
	t2, _ := other.Store.GetTenant(context.Background(), "c2")
	if got := srv.movedSince(req, &identity.Identity{Called: other, Home: other, Tenant: t2, ClientKey: t2.ClientKey}, notFound); got != notFound {
		t.Fatalf("movedSince of a missing property = %v", got)
	}
}

// sendRaw is send that keeps the body's bytes.
func (e *env) sendRaw(method, url, token string, body []byte) (int, []byte) {
	e.t.Helper()
	status, _, raw := e.do(method, url, token, body)
	return status, raw
}

// Until a token's signature has verified with the tenant's secret, the caller
// has proved nothing, so every refusal must read the same: otherwise the
// reason tells whether the tenant named in iss exists.
func TestServer_RefusalsBeforeVerificationReadTheSame(t *testing.T) {
	e := mustEnv(t, nil)
	mustReply(t, e.install("EU", "c1", "secret-1", "installed"), http.StatusNoContent, "")
	url := e.base("EU") + "/api/v1/properties/k"
	claims := func(iss string) jwtClaims {
		now := time.Now()
		return jwtClaims{"iss": iss, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
			"qsh": connectjwt.QSH(connectjwt.CanonicalRequest("GET", "/realms/eu/api/v1/properties/k", "", "/realms/eu"))}
	}
	var bodies = map[string][]byte{}
	for _, iss := range []string{"c1", "nobody"} {
		for name, tok := range map[string]string{
			"none":       mustForge(t, "none", nil, claims(iss)),
			"NONE":       mustForge(t, "NONE", nil, claims(iss)),
			"HS512":      mustForge(t, "HS512", []byte("secret-1"), claims(iss)),
			"RS256":      mustForge(t, "RS256", e.keys.key, claims(iss)),
			"badsig":     mustForge(t, "HS256", []byte("guess"), claims(iss)),
			"truncated":  mustForge(t, "HS256", []byte("guess"), claims(iss))[:40],
			"onlyHeader": "eyJhbGciOiJIUzI1NiJ9",
		} {
			status, body := e.sendRaw("GET", url, tok, nil)
			if status != http.StatusUnauthorized {
				t.Fatalf("%s for iss %s: status %d, want 401: %s", name, iss, status, body)
			}
			bodies[iss+"/"+name] = body
		}
	}
	want := bodies["nobody/none"]
	for k, b := range bodies {
		if !bytes.Equal(b, want) {
			t.Errorf("%s answered %s; an unknown tenant gets %s", k, b, want)
		}
	}
	// After verification the reason may be told: the caller holds the secret.
	expired := claims("c1")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	r := e.send("GET", url, mustForge(t, "HS256", []byte("secret-1"), expired), nil)
	mustReply(t, r, http.StatusUnauthorized, realmhook.EUNAUTHORIZED)
	if r.body["reason"] != connectjwt.ReasonExpired {
		t.Fatalf("expired token signed with the tenant's secret: reason %v, want %s", r.body["reason"], connectjwt.ReasonExpired)
	}
}

type jwtClaims = jwt.MapClaims

// mustForge signs claims with any algorithm name, including ones a verifier
// must refuse ("none" in any case).
func mustForge(t *testing.T, alg string, key any, claims jwtClaims) string {
	t.Helper()
	if strings.EqualFold(alg, "none") {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
		tok.Header["alg"] = alg
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s, err := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The qsh's canonical path drops one trailing "/", so a token signed for
// …/properties/ts also verifies for …/properties/ts/. Two requests with the
// same canonical request must name the same resource: a key the canonical
// form cannot tell apart from another is refused.
func TestServer_OneTokenOneProperty(t *testing.T) {
	e := mustEnv(t, nil)
	mustReply(t, e.install("EU", "c1", "s", "installed"), http.StatusNoContent, "")
	base := e.base("EU")
	sign := func(method, path string) string {
		tok, err := connectjwt.Signer{}.HS256([]byte("s"), "c1", method, base+path, base)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	mustReply(t, e.send("PUT", base+"/api/v1/properties/ts", sign("PUT", "/api/v1/properties/ts"), []byte(`1`)), http.StatusCreated, "")
	for _, tc := range []struct{ method, signed, sent string }{
		{"PUT", "/api/v1/properties/ts", "/api/v1/properties/ts/"},
		{"DELETE", "/api/v1/properties/ts", "/api/v1/properties/ts/"},
		{"GET", "/api/v1/properties/ts", "/api/v1/properties/ts/"},
		{"PUT", "/api/v1/properties/ts//", "/api/v1/properties/ts//"},
		{"PUT", "/api/v1/properties/a/b", "/api/v1/properties/a/b/"},
	} {
		r := e.send(tc.method, base+tc.sent, sign(tc.method, tc.signed), []byte(`2`))
		mustReply(t, r, http.StatusBadRequest, realmhook.EINVALID)
	}
	eu, _ := e.realms.Get("EU")
	props, err := eu.Store.ListProperties(context.Background(), "c1", "", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(props) != 1 || props[0].Key != "ts" || string(props[0].Value) != "1" {
		t.Fatalf("properties %+v, want only ts = 1", props)
	}
}

// The realm is decided from the same form of the path as the route: a path
// whose realm differs between the form received (/realms/%65u/…, under the
// global base URL) and the decoded one (/realms/eu/…) is refused, not served
// by one realm's routes for another realm's tenant.
func TestServer_AmbiguousRealmRefused(t *testing.T) {
	e := mustEnv(t, nil)
	mustReply(t, e.install("global", "g1", "s", "installed"), http.StatusNoContent, "")
	mustReply(t, e.call("global", "g1", "s", "PUT", "/api/v1/properties/k", []byte(`1`)), http.StatusCreated, "")
	for _, path := range []string{
		"/realms/%65u/api/v1/properties/k",
		"/realms%2Feu/api/v1/properties/k",
		"/%72ealms/eu/api/v1/properties/k",
	} {
		for _, method := range []string{"GET", "PUT", "DELETE"} {
			// Signed by the global tenant for exactly the URL sent.
			r := e.call("global", "g1", "s", method, path, []byte(`2`))
			if r.status != http.StatusBadRequest || r.body["error"] != realmhook.EINVALID {
				t.Errorf("%s %s: %d %v, want 400 %s", method, path, r.status, r.body, realmhook.EINVALID)
			}
			if r.header.Get("X-Realm") == "EU" {
				t.Errorf("%s %s answered X-Realm EU", method, path)
			}
		}
	}
	// Not ambiguous (both forms name global, which has no such route): 404.
	mustReply(t, e.call("global", "g1", "s", "GET", "/realms/%45U/api/v1/properties/k", nil), http.StatusNotFound, realmhook.ENOTFOUND)
	r := e.call("global", "g1", "s", "GET", "/api/v1/properties/k", nil)
	mustReply(t, r, http.StatusOK, "")
	if r.body["value"] != 1.0 {
		t.Fatalf("global tenant's k = %v after the refused writes, want 1", r.body["value"])
	}
}

// sendRawTarget writes a request whose target goes on the wire byte for byte
// (Go's client would re-escape it) and reads the answer.
func (e *env) sendRawTarget(method, target, token string, body []byte) reply {
	e.t.Helper()
	u, err := neturl.Parse(e.url)
	if err != nil {
		e.t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: JWT %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, target, u.Host, token, len(body), body)
	if _, err := io.WriteString(conn, req); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.t.Fatalf("%s %s answered %d with non-JSON %q", method, target, resp.StatusCode, raw)
		}
	}
	return r
}

// The qsh is computed over the path as received: Go's EscapedPath re-escapes
// a path holding raw non-ASCII or | " ^ {, which is not what the host signed.
func TestServer_QSHOverPathAsReceived(t *testing.T) {
	e := mustEnv(t, nil)
	mustReply(t, e.install("EU", "c1", "s", "installed"), http.StatusNoContent, "")
	for _, key := range []string{"é", "a|b", `q"x`, "x^y{z}", "%41é"} {
		target := "/realms/eu/api/v1/properties/" + key
		qsh := connectjwt.QSH(connectjwt.CanonicalRequest("PUT", target, "", "/realms/eu"))
		now := time.Now()
		tok := mustForge(t, "HS256", []byte("s"), jwtClaims{"iss": "c1", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "qsh": qsh})
		r := e.sendRawTarget("PUT", target, tok, []byte(`1`))
		mustReply(t, r, http.StatusCreated, "")
	}
}

// TestServer_PropertyTextRefusedOnEveryBackend: a key with NUL and a value
// that is not UTF-8 JSON are refused by the API with a 400 that says what is
// wrong, before any store sees them (a SQLite realm used to store them, and
// such a tenant could never migrate to PostgreSQL).
func TestServer_PropertyTextRefusedOnEveryBackend(t *testing.T) {
	e := mustEnv(t, nil)
	mustReply(t, e.install("US", "c1", "s", "installed"), http.StatusNoContent, "")
	for _, tc := range []struct {
		name, path, body, say string
	}{
		{"KeyNUL", "/api/v1/properties/a%00b", `1`, "NUL"},
		{"ValueBadUTF8", "/api/v1/properties/k", "\"bad\xffutf8\"", "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call("US", "c1", "s", "PUT", tc.path, []byte(tc.body))
			mustReply(t, r, http.StatusBadRequest, realmhook.EINVALID)
			if msg, _ := r.body["message"].(string); !strings.Contains(msg, tc.say) {
				t.Fatalf("message %q does not say %q", msg, tc.say)
			}
			r = e.call("US", "c1", "s", "GET", tc.path, nil)
			if r.status == http.StatusOK {
				t.Fatalf("refused property was stored: %v", r.body)
			}
		})
	}
}

// TestServer_StatusWhileDatabaseDown: /status never answers 5xx. With the
// database gone it answers 200 with the last status this process saw for
// the migration, or in-progress, marked stale; never failed.
func TestServer_StatusWhileDatabaseDown(t *testing.T) {
	e := mustEnv(t, nil)
	mustReply(t, e.install("EU", "c1", "s", "installed"), http.StatusNoContent, "")
	now := time.Now().UTC()
	body, _ := json.Marshal(map[string]any{"migrationId": "m1", "location": "US",
		"startTime": now.Format(time.RFC3339), "endTime": now.Add(time.Hour).Format(time.RFC3339)})
	mustReply(t, e.call("EU", "c1", "s", "POST", "/dare-migration/schedule", body), http.StatusOK, "")
	mustReply(t, e.call("EU", "c1", "s", "GET", "/dare-migration/status?migrationId=m1", nil), http.StatusOK, "")

	for _, k := range []string{"global", "US", "EU"} {
		r, _ := e.realms.Get(k)
		r.Store.Close()
	}
	// Past the engine's status cache, which would answer for a while yet.
	e.skip(migration.StatusMaxStale)
	for _, tc := range []struct {
		name, clientKey, secret, id, want string
	}{
		{"LastSeen", "c1", "s", "m1", string(realmhook.MigrationScheduled)},
		{"NeverSeenMigration", "c1", "s", "m2", statusInProgress},
		{"NeverSeenTenant", "c2", "s2", "m1", statusInProgress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call("EU", tc.clientKey, tc.secret, "GET", "/dare-migration/status?migrationId="+tc.id, nil)
			mustReply(t, r, http.StatusOK, "")
			if r.body["status"] != tc.want || r.body["stale"] != true || r.body["errorResponseCode"] != nil {
				t.Fatalf("body %v: want status %s, stale, no errorResponseCode", r.body, tc.want)
			}
		})
	}
	t.Run("WrongSecretRefused", func(t *testing.T) {
		// The remembered tenant's secret still guards its remembered status.
		r := e.call("EU", "c1", "wrong", "GET", "/dare-migration/status?migrationId=m1", nil)
		mustReply(t, r, http.StatusUnauthorized, realmhook.EUNAUTHORIZED)
	})
}

// TestServer_LeftoverCopyIs421: a moved tenant's leftover copy, kept or being
// purged, sends its caller to the realm the tenant moved to, and refuses a
// re-install there.
func TestServer_LeftoverCopyIs421(t *testing.T) {
	for _, state := range []realmhook.TenantState{realmhook.TenantMoved, realmhook.TenantPurging} {
		t.Run(string(state), func(t *testing.T) {
			e := mustEnv(t, nil)
			mustReply(t, e.install("EU", "c1", "s", "installed"), http.StatusNoContent, "")
			eu, _ := e.realms.Get("EU")
			ten, err := eu.Store.GetTenant(context.Background(), "c1")
			if err != nil {
				t.Fatal(err)
			}
			ten.State, ten.MovedTo = state, "US"
			if err := eu.Store.PutTenant(context.Background(), ten); err != nil {
				t.Fatal(err)
			}
			r := e.call("EU", "c1", "s", "GET", "/api/v1/properties/k", nil)
			mustReply(t, r, http.StatusMisdirectedRequest, realmhook.EMISDIRECTED)
			if r.body["expectedRealm"] != "US" || r.body["correctBaseUrl"] != e.base("US") {
				t.Fatalf("421 body %v", r.body)
			}
			r = e.install("EU", "c1", "s2", "installed")
			mustReply(t, r, http.StatusConflict, realmhook.ECONFLICT)
			if r.body["pinnedRealm"] != "US" {
				t.Fatalf("re-install over the leftover copy: %v, want pinned to US", r.body)
			}
		})
	}
}
