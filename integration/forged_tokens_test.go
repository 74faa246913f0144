package integration

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/integration/suitereport"
)

// authRoute is one authenticated route of a realm: how the host calls it.
type authRoute struct {
	method, path, query string
	body                []byte
	install             bool // RS256 signed install; otherwise HS256 with the tenant's secret
	hook                bool // a lifecycle or migration hook: context-qsh is refused
}

func authenticatedRoutes(installBody []byte) []authRoute {
	migration := []byte(`{"migrationId":"forged-1","startTime":"2026-01-01T00:00:00Z","endTime":"2026-01-02T00:00:00Z","location":"XX"}`)
	return []authRoute{
		{method: "POST", path: "/installed", body: installBody, install: true, hook: true},
		{method: "POST", path: "/uninstalled", body: installBody, install: true, hook: true},
		{method: "POST", path: "/enabled", hook: true},
		{method: "POST", path: "/disabled", hook: true},
		{method: "POST", path: "/dare-migration/schedule", body: migration, hook: true},
		{method: "POST", path: "/dare-migration/start", body: migration, hook: true},
		{method: "GET", path: "/dare-migration/status", query: "migrationId=forged-1", hook: true},
		{method: "POST", path: "/dare-migration/commit", body: []byte(`{"migrationId":"forged-1"}`), hook: true},
		{method: "POST", path: "/dare-migration/rollback", body: []byte(`{"migrationId":"forged-1"}`), hook: true},
		{method: "GET", path: "/api/v1/properties", query: "limit=10"},
		{method: "GET", path: "/api/v1/properties/k"},
		{method: "PUT", path: "/api/v1/properties/k", body: []byte(`"forged"`)},
		{method: "DELETE", path: "/api/v1/properties/k"},
	}
}

// forgery is one forged or replayed token for a route. keyed says it is
// signed with the key the route verifies with (the tenant's secret, or the
// key server's key for an install): only then may the refusal say why.
type forgery struct {
	name  string
	token string
	keyed bool
}

// forger builds tokens as an attacker would, with claims of any shape.
type forger struct {
	t       *testing.T
	srv     *server
	ks      *keyServer
	victim  tenant
	other   tenant
	realm   string
	rsaKey  *rsa.PrivateKey // a key the key server does not serve
	ecKey   *ecdsa.PrivateKey
	pubPEM  []byte // the key server's public key, for key confusion
	unknown int    // counter for fresh, well-formed, unknown kids
}

func (f *forger) base() string { return f.srv.realmURL(f.realm) }

func (f *forger) qsh(method, path, query string) string {
	basePath := strings.TrimPrefix(f.base(), f.srv.Base)
	return connectjwt.QSH(connectjwt.CanonicalRequest(method, basePath+path, query, basePath))
}

func (f *forger) claims(r authRoute) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": f.victim.ClientKey,
		"iat": now.Unix(),
		"exp": now.Add(2 * time.Minute).Unix(),
		"qsh": f.qsh(r.method, r.path, r.query),
	}
	if r.install {
		c["aud"] = f.base()
	}
	return c
}

// sign signs a raw claim set (any JSON types) with a header of any shape.
func (f *forger) sign(alg string, key any, header map[string]any, claims map[string]any) string {
	f.t.Helper()
	return f.signAs(alg, alg, key, header, claims)
}

// signAs signs with method but names headerAlg in the header.
func (f *forger) signAs(headerAlg, method string, key any, header map[string]any, claims map[string]any) string {
	f.t.Helper()
	h := map[string]any{"typ": "JWT", "alg": headerAlg}
	for k, v := range header {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(claims)
	signing := base64URL(hb) + "." + base64URL(cb)
	var sig []byte
	switch {
	case strings.EqualFold(strings.TrimSpace(method), "none"):
	default:
		m := jwt.GetSigningMethod(method)
		if m == nil {
			f.t.Fatalf("no signing method %s", method)
		}
		s, err := m.Sign(signing, key)
		if err != nil {
			f.t.Fatalf("sign %s: %v", method, err)
		}
		sig = s
	}
	return signing + "." + base64URL(sig)
}

func with(c map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// corpus generates every forgery for one route.
func (f *forger) corpus(r authRoute) []forgery {
	t := f.t
	t.Helper()
	c := f.claims(r)
	secret := []byte(f.victim.Secret)
	var out []forgery
	add := func(name, token string, keyed bool) { out = append(out, forgery{name, token, keyed}) }

	// The key the route verifies with, and a signer over it.
	alg, key := "HS256", any(secret)
	kidHeader := map[string]any{}
	if r.install {
		alg, key = "RS256", any(f.ks.Key)
		kidHeader = map[string]any{"kid": f.ks.Kid}
	}
	keyed := func(claims map[string]any) string { return f.sign(alg, key, kidHeader, claims) }
	genuine := keyed(c)

	// Algorithm swaps, "none" in every casing.
	for _, none := range []string{"none", "None", "NONE", "nOnE", "none "} {
		add("alg="+none, f.sign(none, nil, kidHeader, c), false)
		add("alg="+none+"+genuine-signature", f.sign(none, nil, kidHeader, c)+signatureOf(genuine), false)
	}
	for _, a := range []string{"HS384", "HS512"} {
		add("alg="+a+"+secret", f.sign(a, secret, kidHeader, c), false)
	}
	add("alg=RS256+unknown-key", f.sign("RS256", f.rsaKey, map[string]any{"kid": f.ks.Kid}, c), false)
	add("alg=PS256", f.sign("PS256", f.ks.Key, map[string]any{"kid": f.ks.Kid}, c), false)
	add("alg=ES256", f.sign("ES256", f.ecKey, map[string]any{"kid": f.ks.Kid}, c), false)
	add("alg=hs256", f.signAs("hs256", "HS256", secret, kidHeader, c), false)
	add("alg=rs256", f.signAs("rs256", "RS256", f.ks.Key, kidHeader, c), false)
	add("alg-missing", strings.Replace(genuine, strings.Split(genuine, ".")[0], base64URL([]byte(`{"typ":"JWT"}`)), 1), false)
	add("alg=number", strings.Replace(genuine, strings.Split(genuine, ".")[0], base64URL([]byte(`{"alg":256}`)), 1), false)
	if r.install {
		add("alg=HS256+tenant-secret", f.sign("HS256", secret, kidHeader, c), false)
	} else {
		add("alg=RS256+key-server-key", f.sign("RS256", f.ks.Key, map[string]any{"kid": f.ks.Kid}, c), false)
	}
	// Key confusion: the RSA public key (PEM, and its DER) as an HMAC secret.
	add("HS256+rsa-public-pem", f.sign("HS256", f.pubPEM, kidHeader, c), false)
	add("HS256+rsa-public-pem-trimmed", f.sign("HS256", bytes.TrimSpace(f.pubPEM), kidHeader, c), false)
	// Wrong key, empty key.
	add("HS256+guessed-secret", f.sign("HS256", []byte("secret"), kidHeader, c), false)
	add("HS256+another-tenant's-secret", f.sign("HS256", []byte(f.other.Secret), kidHeader, c), false)
	// Another tenant's iss, signed with the victim's key.
	add("iss=other-tenant", keyed(with(c, "iss", f.other.ClientKey)), r.install)
	add("iss=unknown", keyed(with(c, "iss", "nobody-"+f.victim.ClientKey)), r.install)

	// Times.
	now := time.Now()
	add("expired", keyed(with(c, "exp", now.Add(-time.Hour).Unix())), true)
	add("expired-long-ago", keyed(with(c, "exp", 1, "iat", 0)), true)
	add("nbf-future", keyed(with(c, "nbf", now.Add(time.Hour).Unix())), true)
	add("iat-future", keyed(with(c, "iat", now.Add(time.Hour).Unix())), true)
	// Missing claims.
	for _, claim := range []string{"exp", "iat", "qsh"} {
		add("missing-"+claim, keyed(with(c, claim, nil)), true)
	}
	add("missing-iss", keyed(with(c, "iss", nil)), r.install)
	if r.install {
		add("missing-aud", keyed(with(c, "aud", nil)), true)
	}
	// Claims of the wrong JSON type.
	for _, tc := range []struct {
		name  string
		claim string
		value any
		keyed bool
	}{
		{"exp-numeric-string", "exp", fmt.Sprint(now.Add(time.Minute).Unix()), true},
		{"iat-numeric-string", "iat", fmt.Sprint(now.Unix()), true},
		{"nbf-numeric-string", "nbf", fmt.Sprint(now.Unix()), true},
		{"exp-word", "exp", "tomorrow", true},
		{"exp-bool", "exp", true, true},
		{"exp-object", "exp", map[string]any{"$date": 1}, true},
		{"iat-null", "iat", json.RawMessage("null"), true},
		{"iss-number", "iss", 42, r.install},
		{"iss-array", "iss", []string{f.victim.ClientKey}, r.install},
		{"qsh-number", "qsh", 7, true},
		{"qsh-array", "qsh", []string{c["qsh"].(string)}, true},
		{"aud-number", "aud", 5, true},
		{"aud-object", "aud", map[string]any{"a": 1}, true},
	} {
		add(tc.name, keyed(with(c, tc.claim, tc.value)), tc.keyed)
	}
	// qsh of another request: another path, method, query; replays of
	// genuine tokens for other routes.
	add("qsh-other-path", keyed(with(c, "qsh", f.qsh(r.method, r.path+"x", r.query))), true)
	add("qsh-other-method", keyed(with(c, "qsh", f.qsh(otherMethod(r.method), r.path, r.query))), true)
	add("qsh-other-query", keyed(with(c, "qsh", f.qsh(r.method, r.path, r.query+"&extra=1"))), true)
	add("qsh-uppercase", keyed(with(c, "qsh", strings.ToUpper(c["qsh"].(string)))), true)
	add("qsh-empty", keyed(with(c, "qsh", "")), true)
	add("qsh-other-realm-base", keyed(with(c, "qsh", connectjwt.QSH(connectjwt.CanonicalRequest(r.method, strings.TrimPrefix(f.base(), f.srv.Base)+r.path, r.query, "")))), true)
	if r.hook {
		add("context-qsh", keyed(with(c, "qsh", connectjwt.ContextQSH)), true)
	}
	for _, other := range authenticatedRoutes(nil) {
		if other.path == r.path && other.method == r.method {
			continue
		}
		add("replay-of "+other.method+" "+other.path, keyed(with(c, "qsh", f.qsh(other.method, other.path, other.query))), true)
	}
	// Shape: truncated, oversized, padded, extra segments.
	parts := strings.Split(genuine, ".")
	add("truncated-header", parts[0][:len(parts[0])/2], false)
	add("header-only", parts[0], false)
	add("header-dot", parts[0]+".", false)
	add("no-signature", parts[0]+"."+parts[1], false)
	add("empty-signature", parts[0]+"."+parts[1]+".", false)
	add("signature-cut", genuine[:len(genuine)-5], false)
	add("signature-flipped", genuine[:len(genuine)-2]+flip(genuine[len(genuine)-2:]), false)
	add("four-segments", genuine+".x", false)
	add("dots", "..", false)
	add("not-base64", "!!!.@@@.###", false)
	add("header-not-json", base64URL([]byte("nope"))+"."+parts[1]+"."+parts[2], false)
	add("payload-not-json", parts[0]+"."+base64URL([]byte("nope"))+"."+parts[2], false)
	add("payload-array", f.signRaw(alg, key, kidHeader, []byte(`[1,2]`)), false)
	add("payload-duplicate-iss", f.signRaw(alg, key, kidHeader, duplicateIss(c, f.other.ClientKey)), r.install)
	add("oversized-40KiB", keyed(with(c, "pad", strings.Repeat("A", 40<<10))), false)
	add("oversized-context", keyed(with(c, "context", map[string]any{"pad": strings.Repeat("B", 33<<10)})), false)
	// kids: odd ones on any route; on install, the kid names a URL path.
	for _, kid := range []any{"", "../" + f.ks.Kid, f.ks.Kid + "/../x", "a/b", "%2e%2e", "a?b=c", "a#b", strings.Repeat("k", 129), 7, nil, "kid with spaces", "ключ", f.ks.Kid + "\x00"} {
		h := map[string]any{"kid": kid}
		tok := f.sign(alg, key, h, c)
		if r.install {
			add(fmt.Sprintf("kid=%q", kid), tok, false)
		} else {
			// HS256 does not read kid; with a wrong secret it is refused.
			add(fmt.Sprintf("kid=%q+guessed-secret", kid), f.sign("HS256", []byte("guess"), h, c), false)
		}
	}
	if r.install {
		f.unknown++
		add("kid=unknown-well-formed", f.sign("RS256", f.rsaKey, map[string]any{"kid": fmt.Sprintf("unknown-kid-%d", f.unknown)}, c), false)
		// aud: another app's base URL, a prefix of ours, none of ours.
		for _, aud := range []any{"https://evil.example.com", f.srv.Base + "/realms", f.base() + "x", "", []string{}, []string{"https://evil.example.com"}} {
			add(fmt.Sprintf("aud=%v", aud), keyed(with(c, "aud", aud)), true)
		}
	}
	return out
}

// signRaw signs an arbitrary payload.
func (f *forger) signRaw(alg string, key any, header map[string]any, payload []byte) string {
	h := map[string]any{"typ": "JWT", "alg": alg}
	for k, v := range header {
		h[k] = v
	}
	hb, _ := json.Marshal(h)
	signing := base64URL(hb) + "." + base64URL(payload)
	s, err := jwt.GetSigningMethod(alg).Sign(signing, key)
	if err != nil {
		f.t.Fatal(err)
	}
	return signing + "." + base64URL(s)
}

// duplicateIss is the claims as JSON with a second, last iss naming another
// tenant. RFC 7519 lets a parser take the last of duplicate names, as Go's
// does; the tenant looked up before verification must be the one verified.
func duplicateIss(c map[string]any, other string) []byte {
	b, _ := json.Marshal(c)
	return append(b[:len(b)-1], []byte(`,"iss":`+fmt.Sprintf("%q", other)+`}`)...)
}

func signatureOf(token string) string { return token[strings.LastIndexByte(token, '.')+1:] }

func otherMethod(m string) string {
	if m == "GET" {
		return "POST"
	}
	return "GET"
}

func flip(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
	}
	return string(b)
}

// TestTokens_ForgedAndReplayedAreRefused is suite family 3: a generated
// corpus of forged and replayed tokens on every authenticated route of the
// real binary. Every one is refused; every refusal before the signature has
// verified with the route's key reads byte for byte like an unknown tenant's.
// On SQLite and on PostgreSQL, as the tenant lookup before verification
// differs by backend.
func TestTokens_ForgedAndReplayedAreRefused(t *testing.T) {
	var forged, refused int
	preBodies := map[string]int{}
	forEachLayout(t, []layout{allSQLite, allPostgres}, func(t *testing.T, l layout) {
		f, r := testForgedTokens(t, l, preBodies)
		forged += f
		refused += r
	})
	suitereport.Record(t, "tokens", "%d forged on %d routes (SQLite and PostgreSQL), %d refused, %d distinct pre-verification bodies",
		forged, len(authenticatedRoutes(nil)), refused, len(preBodies))
	if len(preBodies) != 1 {
		t.Errorf("%d distinct bodies before verification, want 1: %v", len(preBodies), preBodies)
	}
}

func testForgedTokens(t *testing.T, l layout, preBodies map[string]int) (forged, refused int) {
	ks := mustKeyServer(t)
	s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: mustRealmDBs(t, l).databases()})
	victim, other := newTenant(t), newTenant(t)
	mustInstall(t, s, ks, victim, "EU")
	mustInstall(t, s, ks, other, "US")
	mustStatus(t, call(t, s, victim, "EU", "PUT", "/api/v1/properties/k", []byte(`"original"`)), http.StatusCreated, "seed property")

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := connectjwt.EncodePublicKeyPEM(&ks.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	f := &forger{t: t, srv: s, ks: ks, victim: victim, other: other, realm: "EU", rsaKey: rsaKey, ecKey: ecKey, pubPEM: pub}

	// The body of an unknown tenant's refusal, every route: the baseline.
	unknown := tenant{ClientKey: "nobody", Secret: "nothing"}
	baseline := call(t, s, unknown, "EU", "GET", "/api/v1/properties/k", nil)
	mustStatus(t, baseline, http.StatusUnauthorized, "unknown tenant")

	for _, route := range authenticatedRoutes(installBody(victim, "installed")) {
		body := route.body
		if route.path == "/uninstalled" {
			body = installBody(victim, "uninstalled")
		}
		url := f.base() + route.path
		if route.query != "" {
			url += "?" + route.query
		}
		for _, fg := range f.corpus(route) {
			forged++
			r := do(t, route.method, url, http.Header{"Authorization": {"JWT " + fg.token}}, body)
			if r.Status < 400 || r.Status >= 500 {
				t.Errorf("%s %s with %s: %d %s, want a 4xx refusal", route.method, route.path, fg.name, r.Status, r.Body)
				continue
			}
			refused++
			if !fg.keyed {
				preBodies[string(r.Body)]++
				if r.Status != http.StatusUnauthorized || !bytes.Equal(r.Body, baseline.Body) {
					t.Errorf("%s %s with %s (not signed with the route's key): %d %s, want the unknown tenant's 401 %s",
						route.method, route.path, fg.name, r.Status, r.Body, baseline.Body)
				}
			}
		}
		// The same request with the genuine token is not refused for its
		// token: the corpus was refused for what was forged.
		if route.path != "/uninstalled" {
			var r response
			if route.install {
				tok, err := connectjwt.Signer{}.RS256(ks.Key, ks.Kid, victim.ClientKey, f.base(), route.method, url, f.base())
				if err != nil {
					t.Fatal(err)
				}
				r = do(t, route.method, url, http.Header{"Authorization": {"JWT " + tok}}, body)
			} else {
				r = call(t, s, victim, "EU", route.method, strings.TrimPrefix(url, f.base()), body)
			}
			if r.Status == http.StatusUnauthorized || r.Status >= 500 {
				t.Errorf("%s %s with the genuine token: %d %s", route.method, route.path, r.Status, r.Body)
			}
			if route.method == "DELETE" {
				mustStatus(t, call(t, s, victim, "EU", "PUT", "/api/v1/properties/k", []byte(`"original"`)), http.StatusCreated, "restore property")
			}
		}
	}
	// Nothing forged changed anything: the property is the genuine one, and
	// the victim's secret still opens it.
	r := call(t, s, victim, "EU", "GET", "/api/v1/properties/k", nil)
	mustStatus(t, r, http.StatusOK, "victim reads its property")
	if v := r.JSON(t)["value"]; v != "original" {
		t.Errorf("victim's property is %v after the corpus, want original", v)
	}
	if strings.Contains(s.Output(), victim.Secret) {
		t.Error("the server's log holds the tenant's shared secret")
	}

	// Replays across a secret rotation: a genuine token minted before the
	// host re-installed with a new secret no longer opens anything.
	url := f.base() + "/api/v1/properties/k"
	old, err := connectjwt.Signer{}.HS256([]byte(victim.Secret), victim.ClientKey, "GET", url, f.base())
	if err != nil {
		t.Fatal(err)
	}
	rotated := victim
	rotated.Secret = victim.Secret + "-rotated"
	mustInstall(t, s, ks, rotated, "EU")
	forged++
	if r := do(t, "GET", url, http.Header{"Authorization": {"JWT " + old}}, nil); r.Status == http.StatusUnauthorized && bytes.Equal(r.Body, baseline.Body) {
		refused++
		preBodies[string(r.Body)]++
	} else {
		t.Errorf("token from before the secret rotation: %d %s, want the unknown tenant's 401", r.Status, r.Body)
	}
	mustStatus(t, call(t, s, rotated, "EU", "GET", "/api/v1/properties/k", nil), http.StatusOK, "the rotated secret opens the property")
	return forged, refused
}
