package hooks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/forgefit"
	"github.com/realmhook/realmhook/gateway"
	"github.com/realmhook/realmhook/identitytoken"
)

const testIdentitySecret = "0123456789abcdef0123456789abcdef"

// upstream is an app behind the gateway: it records what reached it.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
	// handle answers; nil answers 200 "ok".
	handle http.HandlerFunc
}

type seenRequest struct {
	method, path, rawPath, query string
	header                       http.Header
	body                         []byte
}

func mustUpstream(t *testing.T, handle http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{handle: handle}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u.handle != nil {
			u.handle(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, seenRequest{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Header.Clone(), body})
		u.mu.Unlock()
		w.Header().Set("X-App", "yes")
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenRequest(nil), u.seen...)
}

func (u *upstream) mustBeUntouched(t *testing.T) {
	t.Helper()
	if n := len(u.requests()); n != 0 {
		t.Fatalf("the upstream was called %d times, want never", n)
	}
}

// gwEnv is env with a gateway: EU's upstream is eu (under /app), every
// other realm's is def.
type gwEnv struct {
	*env
	eu, def *upstream
}

func mustGateway(t *testing.T, eu, def *upstream, tune func(*gateway.Options)) *gwEnv {
	t.Helper()
	if eu == nil {
		eu = mustUpstream(t, nil)
	}
	if def == nil {
		def = mustUpstream(t, nil)
	}
	parse := func(raw string) *neturl.URL {
		u, err := neturl.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	opts := &gateway.Options{
		Upstreams:    map[string]*neturl.URL{"EU": parse(eu.URL + "/app/"), "US": parse(def.URL), "global": parse(def.URL)},
		Public:       []string{"/static/**", "/favicon.ico", "/p/*/x"},
		Key:          identitytoken.Key(testIdentitySecret),
		MaxBodyBytes: 1024,
		Timeout:      5 * time.Second,
	}
	if tune != nil {
		tune(opts)
	}
	return &gwEnv{env: mustEnv(t, nil, func(o *Options) { o.Gateway = opts }), eu: eu, def: def}
}

func mustIdentity(t *testing.T, h http.Header) *identitytoken.Claims {
	t.Helper()
	if n := len(h.Values(identitytoken.Header)); n != 1 {
		t.Fatalf("%d identity headers, want 1: %v", n, h)
	}
	c, err := identitytoken.Verify(h.Get(identitytoken.Header), []byte(testIdentitySecret), time.Now(), time.Second)
	if err != nil {
		t.Fatalf("identity token: %v", err)
	}
	return c
}

func TestGateway_ForwardsWithIdentity(t *testing.T) {
	g := mustGateway(t, nil, nil, nil)
	mustReply(t, g.install("EU", "c1", "s", "installed"), http.StatusNoContent, "")
	url := g.base("EU") + "/page/a%20b?x=1&y=%2F"
	tok, err := connectjwt.Signer{}.HS256([]byte("s"), "c1", "POST", url, g.base("EU"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", url, strings.NewReader("hello"))
	req.Header.Set("Authorization", "JWT "+tok)
	req.Header.Set("X-Realmhook-Identity", "forged")
	req.Header.Set("x-realmhook-realm", "US")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("X-Keep", "kept")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" || resp.Header.Get("X-App") != "yes" {
		t.Fatalf("answer %d %q %v", resp.StatusCode, body, resp.Header)
	}
	seen := g.eu.requests()
	if len(seen) != 1 {
		t.Fatalf("upstream saw %d requests", len(seen))
	}
	r := seen[0]
	if r.method != "POST" || r.path != "/app/page/a b" || r.query != "x=1&y=%2F" || string(r.body) != "hello" {
		t.Errorf("upstream saw %s %s ?%s %q", r.method, r.path, r.query, r.body)
	}
	for k, want := range map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http",
		"X-Forwarded-Host": strings.TrimPrefix(g.url, "http://"), "X-Keep": "kept", "X-Hop": "", "X-Realmhook-Realm": ""} {
		if got := r.header.Get(k); got != want {
			t.Errorf("upstream header %s = %q, want %q", k, got, want)
		}
	}
	c := mustIdentity(t, r.header)
	if c.ClientKey() != "c1" || c.Realm != "EU" || c.Frozen || c.User != "" || c.Context != nil {
		t.Errorf("identity %+v", c)
	}
	// The descriptor is realmhook's own, never the app's.
	mustReply(t, g.send("GET", g.base("EU")+"/atlassian-connect.json", "", nil), http.StatusOK, "")
	if n := len(g.eu.requests()); n != 1 {
		t.Errorf("realmhook's route reached the upstream")
	}
}

// A frontend's context token (AP.context.getToken()) is accepted, and the
// host token's sub and context reach the app in the identity.
func TestGateway_ContextTokenUserAndContext(t *testing.T) {
	g := mustGateway(t, nil, nil, nil)
	mustReply(t, g.install("global", "c1", "s", "installed"), http.StatusNoContent, "")
	now := time.Now()
	tok := mustForge(t, "HS256", []byte("s"), jwtClaims{"iss": "c1", "sub": "acct-7", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		"qsh": connectjwt.ContextQSH, "context": map[string]any{"user": map[string]any{"accountId": "acct-7"}}})
	if status, _, body := g.do("GET", g.base("global")+"/rest/things", tok, nil); status != 200 {
		t.Fatalf("context token: %d %s", status, body)
	}
	seen := g.def.requests()
	if len(seen) != 1 || seen[0].path != "/rest/things" {
		t.Fatalf("upstream saw %+v", seen)
	}
	c := mustIdentity(t, seen[0].header)
	if c.User != "acct-7" || string(c.Context) != `{"user":{"accountId":"acct-7"}}` || c.Realm != "global" {
		t.Errorf("identity %+v", c)
	}
}

// Public paths pass without a token and without an identity; every other
// path needs one, and a refused call never reaches the upstream.
func TestGateway_PublicAndRefused(t *testing.T) {
	g := mustGateway(t, nil, nil, nil)
	for _, path := range []string{"/static", "/static/app.js", "/static/a/b/c.css", "/favicon.ico", "/p/one/x"} {
		status, _, body := g.do("GET", g.base("EU")+path, "", nil)
		if status != 200 || string(body) != "ok" {
			t.Fatalf("public %s: %d %s", path, status, body)
		}
	}
	for _, r := range g.eu.requests() {
		if v := r.header.Values(identitytoken.Header); len(v) != 0 {
			t.Errorf("public %s carried an identity %v", r.path, v)
		}
	}
	before := len(g.eu.requests())
	for _, path := range []string{"/", "/page", "/staticx/a", "/p/one/two/x", "/favicon.ico/x"} {
		mustReply(t, g.send("GET", g.base("EU")+path, "", nil), http.StatusUnauthorized, realmhook.EUNAUTHORIZED)
	}
	if n := len(g.eu.requests()); n != before {
		t.Fatalf("%d refused calls reached the upstream", n-before)
	}
}

// Before its token is verified, a call to the app reads exactly as a call to
// the tenant API: forged tokens get the same bytes.
func TestGateway_ForgedTokensReadAsTenantAPI(t *testing.T) {
	g := mustGateway(t, nil, nil, nil)
	mustReply(t, g.install("EU", "c1", "secret-1", "installed"), http.StatusNoContent, "")
	forge := func(path string) map[string]string {
		now := time.Now()
		c := jwtClaims{"iss": "c1", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
			"qsh": connectjwt.QSH(connectjwt.CanonicalRequest("GET", path, "", "/realms/eu"))}
		return map[string]string{
			"none":   mustForge(t, "none", nil, c),
			"HS512":  mustForge(t, "HS512", []byte("secret-1"), c),
			"badsig": mustForge(t, "HS256", []byte("guess"), c),
			"empty":  "",
		}
	}
	api := forge("/realms/eu/api/v1/properties/k")
	for name, tok := range forge("/realms/eu/page") {
		_, want := g.sendRaw("GET", g.base("EU")+"/api/v1/properties/k", api[name], nil)
		status, got := g.sendRaw("GET", g.base("EU")+"/page", tok, nil)
		if status != http.StatusUnauthorized || !bytes.Equal(got, want) {
			t.Errorf("%s: gateway %d %s; tenant API %s", name, status, got, want)
		}
	}
	g.eu.mustBeUntouched(t)
}

// A tenant pinned to another realm gets the tenant API's 421.
func TestGateway_OtherRealmIs421(t *testing.T) {
	g := mustGateway(t, nil, nil, nil)
	mustReply(t, g.install("US", "c1", "s", "installed"), http.StatusNoContent, "")
	got := g.call("EU", "c1", "s", "GET", "/page", nil)
	want := g.call("EU", "c1", "s", "GET", "/api/v1/properties/k", nil)
	mustReply(t, got, http.StatusMisdirectedRequest, realmhook.EMISDIRECTED)
	gb, _ := json.Marshal(got.body)
	wb, _ := json.Marshal(want.body)
	if !bytes.Equal(gb, wb) || got.body["expectedRealm"] != "US" {
		t.Errorf("gateway 421 %s, tenant API %s", gb, wb)
	}
	g.eu.mustBeUntouched(t)
}

// While a migration freezes the tenant, writes are 409 and never forwarded;
// reads pass, frozen.
func TestGateway_WriteFreeze(t *testing.T) {
	g := mustGateway(t, nil, nil, nil)
	mustReply(t, g.install("EU", "c1", "s", "installed"), http.StatusNoContent, "")
	eu, _ := g.realms.Get("EU")
	if _, err := eu.Tenant(context.Background(), "c1"); err != nil { // cached unfrozen
		t.Fatal(err)
	}
	ten, _ := eu.Store.GetTenant(context.Background(), "c1")
	ten.MigrationID = "m1"
	if err := eu.Store.PutTenant(context.Background(), ten); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		r := g.call("EU", "c1", "s", m, "/rows", []byte(`{}`))
		mustReply(t, r, http.StatusConflict, realmhook.EMIGRATING)
		if r.body["migrationId"] != "m1" {
			t.Errorf("%s: 409 body %v", m, r.body)
		}
	}
	g.eu.mustBeUntouched(t)
	base := g.base("EU")
	tok, _ := connectjwt.Signer{}.HS256([]byte("s"), "c1", "GET", base+"/rows", base)
	if status, _, body := g.do("GET", base+"/rows", tok, nil); status != 200 {
		t.Fatalf("read while frozen: %d %s", status, body)
	}
	if c := mustIdentity(t, g.eu.requests()[0].header); !c.Frozen {
		t.Errorf("identity while frozen: frozen = false")
	}
}

// rawRequest sends target as written, for paths an http.Client would clean
// or re-encode.
func (e *env) rawRequest(method, target, headers, body string) (int, []byte) {
	e.t.Helper()
	u, _ := neturl.Parse(e.url)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, method+" "+target+" HTTP/1.1\r\nHost: "+u.Host+"\r\n"+headers+"Connection: close\r\n\r\n"+body); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// A path that could mean two things is refused before anything matches it,
// so no spelling of ".." makes a private path public.
func TestGateway_PathValidation(t *testing.T) {
	g := mustGateway(t, nil, nil, nil)
	tests := []struct {
		target string
		status int
	}{
		{"/realms/eu/static/../admin", 400},
		{"/realms/eu/static/%2e%2e/admin", 400},
		{"/realms/eu/static/%2E%2e/admin", 400},
		{"/realms/eu/static/./app.js", 400},
		{"/realms/eu/static/%2e/app.js", 400},
		{"/realms/eu/static/..", 400},
		{"/realms/eu/static/a%2Fb", 400},
		{"/realms/eu/static/a%2fb", 400},
		{"/static/../realms/eu/x", 400},
		{"/realms/eu/static/...", 200},
		{"/realms/eu/static/.well", 200},
		{"/realms/eu/static/a%20b", 200},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			status, body := g.rawRequest("GET", tt.target, "", "")
			if status != tt.status {
				t.Fatalf("%s: %d %s, want %d", tt.target, status, body, tt.status)
			}
			if status == 400 && !strings.Contains(string(body), `"error":"invalid"`) {
				t.Errorf("400 body %s", body)
			}
		})
	}
	for _, r := range append(g.eu.requests(), g.def.requests()...) {
		for _, seg := range strings.Split(r.path, "/") {
			if seg == "." || seg == ".." {
				t.Errorf("the upstream saw %q", r.path)
			}
		}
		if strings.Contains(strings.ToLower(r.rawPath), "%2f") {
			t.Errorf("the upstream saw %q (%q)", r.path, r.rawPath)
		}
	}
}

func TestGateway_BodyLimit(t *testing.T) {
	var reached sync.Map
	app := mustUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		reached.Store(r.URL.Path, true)
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			<-r.Context().Done() // the gateway broke the body off; it answers
			return
		}
		_, _ = io.WriteString(w, strings.Repeat("x", int(n)))
	})
	g := mustGateway(t, app, nil, nil)
	t.Run("ContentLengthOver", func(t *testing.T) {
		status, body := g.rawRequest("POST", "/realms/eu/static/cl", "Content-Length: 1025\r\n", strings.Repeat("a", 1025))
		if status != 413 || !strings.Contains(string(body), `"error":"too_large"`) {
			t.Fatalf("%d %s", status, body)
		}
		if _, ok := reached.Load("/app/static/cl"); ok {
			t.Fatal("the upstream was called")
		}
	})
	t.Run("ChunkedOver", func(t *testing.T) {
		req, _ := http.NewRequest("POST", g.base("EU")+"/static/chunked", struct{ io.Reader }{strings.NewReader(strings.Repeat("a", 5000))})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(body), `"error":"too_large"`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("ChunkedAtLimit", func(t *testing.T) {
		req, _ := http.NewRequest("POST", g.base("EU")+"/static/exact", struct{ io.Reader }{strings.NewReader(strings.Repeat("a", 1024))})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(body) != 1024 {
			t.Fatalf("%d, %d bytes", resp.StatusCode, len(body))
		}
	})
}

func TestGateway_UpstreamDownAndSlow(t *testing.T) {
	t.Run("Down", func(t *testing.T) {
		dead := mustUpstream(t, nil)
		dead.Close()
		g := mustGateway(t, dead, nil, nil)
		r := g.send("GET", g.base("EU")+"/static/x", "", nil)
		mustReply(t, r, http.StatusBadGateway, realmhook.EUPSTREAM)
		if strings.Contains(r.body["message"].(string), "127.0.0.1") {
			t.Errorf("502 names the upstream's address: %v", r.body)
		}
	})
	t.Run("Slow", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		slow := mustUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		g := mustGateway(t, slow, nil, func(o *gateway.Options) { o.Timeout = 100 * time.Millisecond })
		mustReply(t, g.send("GET", g.base("EU")+"/static/x", "", nil), http.StatusGatewayTimeout, realmhook.EUPSTREAMTIMEOUT)
	})
}

// Server-sent events, and any answer without a length: each write reaches
// the client as the app flushes it, not when the answer ends.
func TestGateway_StreamsEvents(t *testing.T) {
	for _, contentType := range []string{"text/event-stream", "application/x-ndjson"} {
		t.Run(contentType, func(t *testing.T) {
			next := make(chan struct{})
			sse := mustUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", contentType)
				for i := 0; i < 3; i++ {
					_, _ = io.WriteString(w, "data: "+string(rune('a'+i))+"\n\n")
					w.(http.Flusher).Flush()
					select {
					case <-next:
					case <-r.Context().Done():
						return
					}
				}
			})
			g := mustGateway(t, sse, nil, nil)
			resp, err := http.Get(g.base("EU") + "/static/events")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			lines := bufio.NewReader(resp.Body)
			for i := 0; i < 3; i++ {
				line, err := lines.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if want := "data: " + string(rune('a'+i)) + "\n"; line != want {
					t.Fatalf("event %d: %q, want %q", i, line, want)
				}
				_, _ = lines.ReadString('\n')
				next <- struct{}{} // the app writes the next event only now
			}
		})
	}
}

// Without a gateway, realmhook answers what it does not serve with 404.
func TestGateway_NoneIs404(t *testing.T) {
	e := mustEnv(t, nil)
	mustReply(t, e.send("GET", e.base("EU")+"/page", "", nil), http.StatusNotFound, realmhook.ENOTFOUND)
}

// A Forge invocation of an app route is proxied like a Connect call: the
// identity says protocol forge with the installation, cloud id and
// principal, and the x-forge-oauth-* tokens reach the app unchanged.
func TestGateway_ForgeInvocation(t *testing.T) {
	signer, err := forgefit.NewSigner("fk")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := signer.Keys()
	if err != nil {
		t.Fatal(err)
	}
	up := mustUpstream(t, nil)
	parsed, _ := neturl.Parse(up.URL)
	e := mustEnv(t, nil, func(o *Options) {
		o.Gateway = &gateway.Options{Upstreams: map[string]*neturl.URL{"EU": parsed, "US": parsed, "global": parsed},
			Key: identitytoken.Key(testIdentitySecret), MaxBodyBytes: 1024, Timeout: 5 * time.Second}
		o.Forge = &Forge{Verifier: &forgefit.Verifier{AppARI: testForgeApp, Keys: keys, Leeway: time.Second},
			MigrationPath: "/migration", EventsPath: "/forge/events", Window: time.Hour}
	})
	tok, err := signer.Mint(forgefit.Invocation{AppARI: testForgeApp, InstallationID: "inst-g", CloudID: "site-g", Principal: "acct-9"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", e.base("EU")+"/rest/things", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Forge-Oauth-System", "system-token-1")
	req.Header.Set("X-Forge-Oauth-User", "user-token-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("forge invocation: %d", resp.StatusCode)
	}
	seen := up.requests()
	if len(seen) != 1 {
		t.Fatalf("upstream saw %d requests", len(seen))
	}
	c := mustIdentity(t, seen[0].header)
	if c.Protocol != "forge" || c.InstallationID != "inst-g" || c.CloudID != "site-g" || c.Principal != "acct-9" || c.ClientKey() != "inst-g" || c.Realm != "EU" {
		t.Errorf("identity %+v", c)
	}
	if seen[0].header.Get("X-Forge-Oauth-System") != "system-token-1" || seen[0].header.Get("X-Forge-Oauth-User") != "user-token-1" {
		t.Errorf("the x-forge-oauth-* headers did not pass unchanged: %v", seen[0].header)
	}
	req2, _ := http.NewRequest("GET", e.base("US")+"/rest/things", nil)
	req2.Header.Set("Authorization", "Bearer "+tok)
	resp2, err := http.DefaultClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusMisdirectedRequest || len(up.requests()) != 1 {
		t.Errorf("the installation's call at US: %d, upstream calls %d", resp2.StatusCode, len(up.requests()))
	}
}
