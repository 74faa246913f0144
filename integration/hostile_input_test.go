package integration

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/integration/suitereport"
)

// rawAnswer is an HTTP answer read off a raw connection; closed says the
// server closed the connection without answering.
type rawAnswer struct {
	status int
	header http.Header
	body   []byte
	closed bool
}

// rawDo writes one request byte for byte (Go's client would re-escape the
// target or refuse odd headers) and reads the answer.
func rawDo(t *testing.T, addr, request string) rawAnswer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil && !errors.Is(err, net.ErrClosed) && !isConnReset(err) {
		t.Fatal(err)
	}
	return readAnswer(t, conn)
}

func readAnswer(t *testing.T, conn net.Conn) rawAnswer {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isConnReset(err) {
			return rawAnswer{closed: true}
		}
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return rawAnswer{status: resp.StatusCode, header: resp.Header, body: body}
}

func isConnReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// hostile is one hostile request and what it is.
type hostile struct {
	name, method, target string // target: path and query exactly as sent
	headers              []string
	body                 []byte
	install              bool // sign as the host's signed install
	noToken              bool
}

// TestHostileInput_Refused4xxJSON is suite family 4: malformed, deep and
// oversized JSON on every endpoint that reads a body, odd path encodings on
// every route, repeated query parameters, huge headers and slow clients,
// against the real binary on SQLite and on PostgreSQL. Each one is answered
// with a 4xx JSON error (or, for a stalled client, the connection closed),
// never a 5xx; nothing panics.
func TestHostileInput_Refused4xxJSON(t *testing.T) {
	var total hostileCounts
	forEachLayout(t, []layout{allSQLite, allPostgres}, func(t *testing.T, l layout) {
		c := testHostileInput(t, l)
		total.sent += c.sent
		total.refused += c.refused
		total.byNetHTTP += c.byNetHTTP
		total.fivexx += c.fivexx
		total.panics += c.panics
		total.slow += c.slow
	})
	suitereport.Record(t, "hostile", "%d sent (SQLite and PostgreSQL), %d refused 4xx JSON by realmhook, %d refused 400 by net/http (malformed %%-escapes in the target), %d 5xx, %d panics; %d stalled clients cut off; >1 MiB headers refused 431 by net/http",
		total.sent, total.refused, total.byNetHTTP, total.fivexx, total.panics, total.slow)
}

type hostileCounts struct{ sent, refused, byNetHTTP, fivexx, panics, slow int }

func testHostileInput(t *testing.T, l layout) hostileCounts {
	ks := mustKeyServer(t)
	s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: mustRealmDBs(t, l).databases(),
		Extra: "http:\n  readHeaderTimeout: 1s\n  readTimeout: 2s\n  writeTimeout: 3s\n  idleTimeout: 3s\n"})
	ten := newTenant(t)
	mustInstall(t, s, ks, ten, "EU")
	mustStatus(t, call(t, s, ten, "EU", "PUT", "/api/v1/properties/k", []byte(`"original"`)), http.StatusCreated, "seed property")
	u, err := url.Parse(s.Base)
	if err != nil {
		t.Fatal(err)
	}
	addr := u.Host
	const basePath = "/realms/eu"

	// sign returns the Authorization header a genuine caller would send for
	// exactly this target, so the hostile part is what reaches the handler.
	sign := func(h hostile) string {
		path, query, _ := strings.Cut(h.target, "?")
		qsh := connectjwt.QSH(connectjwt.CanonicalRequest(h.method, path, query, basePath))
		now := time.Now()
		claims := map[string]any{"iss": ten.ClientKey, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "qsh": qsh}
		f := &forger{t: t}
		if h.install {
			claims["aud"] = s.realmURL("EU")
			return f.sign("RS256", ks.Key, map[string]any{"kid": ks.Kid}, claims)
		}
		return f.sign("HS256", []byte(ten.Secret), nil, claims)
	}
	build := func(h hostile) string {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", h.method, h.target, addr)
		if !h.noToken {
			fmt.Fprintf(&b, "Authorization: JWT %s\r\n", sign(h))
		}
		for _, hd := range h.headers {
			b.WriteString(hd + "\r\n")
		}
		if h.body != nil {
			fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(h.body))
		}
		b.WriteString("\r\n")
		b.Write(h.body)
		return b.String()
	}

	var cases []hostile
	add := func(h hostile) { cases = append(cases, h) }

	// Bodies, on every route that reads one.
	deepArray := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	deepObject := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	malformed := []string{"{", `{"a":}`, "nul", "[1,]", `{"migrationId":"1"}x`, "\x00", "", "   ", "{'a':1}", `{"a":NaN}`,
		`{"a":"\x01"}`, strings.Repeat("[", 100000), `{"a":1,}`, "\xef\xbb\xbf{}", `{"a" 1}`, `"unterminated`}
	oversized := []string{`"` + strings.Repeat("a", 2<<20) + `"`, `"` + strings.Repeat("b", (1<<20)+1) + `"`}
	wrongShape := []string{"[]", `"x"`, "1", "null", `{"migrationId":{"$gt":""}}`, `{"migrationId":[]}`, `{"migrationId":true}`,
		`{"migrationId":"` + strings.Repeat("9", 300) + `"}`, `{"migrationId":1e400}`, `{"clientKey":123}`, `{"key":null,"clientKey":[]}`,
		`{"migrationId":"m","startTime":"yesterday","endTime":"2026-01-02T00:00:00Z","location":"EU"}`,
		`{"migrationId":"m","startTime":"2026-01-01T00:00:00Z","endTime":"2026-01-02T00:00:00Z","location":"../../EU"}`}
	bodyRoutes := []struct {
		method, path string
		install      bool
		jsonValue    bool // the body is any JSON value (a property)
	}{
		{"POST", "/installed", true, false},
		{"POST", "/uninstalled", true, false},
		{"POST", "/dare-migration/schedule", false, false},
		{"POST", "/dare-migration/start", false, false},
		{"POST", "/dare-migration/commit", false, false},
		{"POST", "/dare-migration/rollback", false, false},
		{"PUT", "/api/v1/properties/k", false, true},
	}
	for _, br := range bodyRoutes {
		bodies := append(append([]string{deepArray, deepObject}, malformed...), oversized...)
		if !br.jsonValue {
			bodies = append(bodies, wrongShape...)
		} else {
			bodies = append(bodies, `"`+strings.Repeat("c", 33<<10)+`"`) // over the property value limit
		}
		for i, b := range bodies {
			add(hostile{name: fmt.Sprintf("body %d", i), method: br.method, target: basePath + br.path, body: []byte(b), install: br.install})
		}
	}

	// Odd path encodings, on every route.
	routes := []struct{ method, path string }{
		{"GET", "/atlassian-connect.json"}, {"POST", "/installed"}, {"POST", "/uninstalled"}, {"POST", "/enabled"}, {"POST", "/disabled"},
		{"POST", "/dare-migration/schedule"}, {"POST", "/dare-migration/start"}, {"GET", "/dare-migration/status"},
		{"POST", "/dare-migration/commit"}, {"POST", "/dare-migration/rollback"}, {"GET", "/api/v1/properties"},
		{"GET", "/api/v1/properties/k"}, {"PUT", "/api/v1/properties/k"}, {"DELETE", "/api/v1/properties/k"},
	}
	suffixes := []string{"%00", "%zz", "%", "%2e%2e", "/..", "/./x", "//", "%2F", "%FF", "%C0%AF", "é", "|{}", "/" + strings.Repeat("s", 10<<10), ";x", "%2500"}
	for _, rt := range routes {
		for _, suf := range suffixes {
			if strings.HasPrefix(rt.path, "/api/v1/properties/") && rt.method != "GET" && !strings.HasPrefix(suf, "/") {
				// A write to "k%00" names a key; the body and key rules are
				// the store conformance suite's. Here: a key the canonical
				// form or the limits refuse.
				continue
			}
			add(hostile{name: "path " + suf, method: rt.method, target: basePath + rt.path + suf, body: []byte(`{}`), install: rt.path == "/installed" || rt.path == "/uninstalled"})
		}
		// The realm's base path itself encoded: ambiguous, refused.
		for _, enc := range []string{"/realms/%65u", "/realms%2Feu", "/%72ealms/eu", "/realms/EU", "//realms/eu", "/realms/./eu"} {
			add(hostile{name: "base " + enc, method: rt.method, target: enc + rt.path, body: []byte(`{}`), noToken: true})
		}
	}
	// Healthz and metrics with odd suffixes (no realm).
	for _, p := range []string{"/healthz/..", "/healthz%00", "/metrics/x", "/readyz//", "/nope"} {
		add(hostile{name: "root " + p, method: "GET", target: p, noToken: true})
	}

	// Repeated and odd query parameters.
	for _, q := range []string{"migrationId=1&migrationId=2", "migrationId=1&migrationId=1", "migrationId=" + strings.Repeat("9", 300), "migrationId=%00", "jwt=a&jwt=b"} {
		add(hostile{name: "query " + q, method: "GET", target: basePath + "/dare-migration/status?" + q})
	}
	for _, q := range []string{"limit=1&limit=2", "prefix=a&prefix=b", "cursor=YQ&cursor=Yg", "limit=abc", "limit=0", "limit=99999999999999999999",
		"limit=-1", "cursor=%%%", "cursor=" + strings.Repeat("A", 4000), "prefix=%FF", "prefix=" + strings.Repeat("p", 300), "cursor=_w"} {
		add(hostile{name: "query " + q, method: "GET", target: basePath + "/api/v1/properties?" + q})
	}

	// Huge headers, under the server's own limit: answered by realmhook in JSON.
	add(hostile{name: "header 70KiB", method: "GET", target: basePath + "/api/v1/properties/k", headers: []string{"X-Pad: " + strings.Repeat("x", 70<<10)}})
	add(hostile{name: "header 900KiB", method: "GET", target: "/healthz", headers: []string{"X-Pad: " + strings.Repeat("x", 900<<10)}, noToken: true})
	var many []string
	for i := 0; i < 2000; i++ {
		many = append(many, fmt.Sprintf("X-H%d: %s", i, strings.Repeat("v", 40)))
	}
	add(hostile{name: "2000 headers", method: "GET", target: basePath + "/api/v1/properties/k", headers: many})
	add(hostile{name: "authorization 100KiB", method: "GET", target: basePath + "/api/v1/properties/k", headers: []string{"Authorization: JWT " + strings.Repeat("a", 100<<10)}, noToken: true})
	add(hostile{name: "two authorization headers", method: "GET", target: basePath + "/api/v1/properties/k", headers: []string{"Authorization: JWT x.y.z"}})

	// net/http itself refuses a request-target with a malformed escape
	// (%zz, a lone %) in plain text before any handler runs: still a 4xx,
	// counted apart.
	var sent, refused, byNetHTTP, fivexx int
	for _, h := range cases {
		sent++
		a := rawDo(t, addr, build(h))
		switch {
		case a.status == http.StatusBadRequest && string(a.body) == "400 Bad Request":
			byNetHTTP++
		case a.closed:
			t.Errorf("%s %.80s (%s): connection closed without an answer", h.method, h.target, h.name)
		case a.status >= 500:
			fivexx++
			t.Errorf("%s %.80s (%s): %d %.200s", h.method, h.target, h.name, a.status, a.body)
		case a.status < 400:
			t.Errorf("%s %.80s (%s): %d %.200s, want a 4xx refusal", h.method, h.target, h.name, a.status, a.body)
		case !isJSONError(a):
			t.Errorf("%s %.80s (%s): %d with a body that is not a JSON error: %.200q", h.method, h.target, h.name, a.status, a.body)
		default:
			refused++
		}
	}

	// Beyond 4× the limit Go's own net/http refuses the headers before
	// realmhook sees them, with a plain-text 431: still a 4xx, not ours.
	huge := rawDo(t, addr, fmt.Sprintf("GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Pad: %s\r\n\r\n", addr, strings.Repeat("x", 2<<20)))
	if !huge.closed && huge.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("2 MiB header: %d, want 431", huge.status)
	}

	// Slow clients: headers that never end, and a body that never arrives,
	// are cut off by the server's read timeouts (1 s and 2 s here).
	slow := 0
	for _, partial := range []string{
		"GET /healthz HTTP/1.1\r\nHost: x\r\n",
		"G",
		fmt.Sprintf("PUT %s/api/v1/properties/slow HTTP/1.1\r\nHost: %s\r\nAuthorization: JWT %s\r\nContent-Length: 1000\r\n\r\n{\"a\":", basePath, addr,
			sign(hostile{method: "PUT", target: basePath + "/api/v1/properties/slow"})),
	} {
		slow++
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(conn, partial); err != nil {
			t.Fatal(err)
		}
		a := readAnswer(t, conn)
		conn.Close()
		switch {
		case a.closed:
		case a.status >= 400 && a.status < 500 && (isJSONError(a) || string(a.body) == "400 Bad Request"):
		default:
			t.Errorf("stalled client %.40q: %d %s, want the connection closed or a 4xx JSON", partial, a.status, a.body)
		}
	}

	// Still serving, nothing panicked, nothing changed.
	r := call(t, s, ten, "EU", "GET", "/api/v1/properties/k", nil)
	mustStatus(t, r, http.StatusOK, "property after the hostile input")
	if v := r.JSON(t)["value"]; v != "original" {
		t.Errorf("property is %v after the hostile input, want original", v)
	}
	panics := strings.Count(s.Output(), "panic")
	if panics > 0 {
		t.Errorf("the server logged %d panics", panics)
	}
	return hostileCounts{sent, refused, byNetHTTP, fivexx, panics, slow}
}

func isJSONError(a rawAnswer) bool {
	var body map[string]any
	if !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") || json.Unmarshal(a.body, &body) != nil {
		return false
	}
	code, ok := body["error"].(string)
	return ok && code != ""
}
