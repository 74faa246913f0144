package hooks

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/connectjwt"
)

// FuzzHookBodies feeds arbitrary bodies to the hook body parsers: they never
// panic, refuse with EINVALID or ETOOLARGE only (a 4xx), and the depth bound
// holds for whatever they accept.
func FuzzHookBodies(f *testing.F) {
	f.Add([]byte(`{"migrationId":"1","startTime":"2026-01-01T00:00:00Z","endTime":"2026-01-02T00:00:00Z","location":"EU"}`))
	f.Add([]byte(`{"migrationId":12345678901234567890123,"location":""}`))
	f.Add([]byte(`{"migrationId":{"a":[]}}`))
	f.Add([]byte(`{"key":"app","clientKey":"c","sharedSecret":"s","baseUrl":"https://x.atlassian.net","eventType":"installed"}`))
	f.Add([]byte(strings.Repeat("[", 70) + strings.Repeat("]", 70)))
	f.Add([]byte(`{"a":"\"[[[[[[[[["}`))
	f.Add([]byte("{\"migrationId\":\"\xff\"}"))
	f.Add([]byte(`{"migrationId":"1"} trailing`))
	f.Fuzz(func(t *testing.T, body []byte) {
		request := func() *http.Request {
			return httptest.NewRequest("POST", "/dare-migration/start", bytes.NewReader(body))
		}
		refusedWell := func(what string, err error) {
			t.Helper()
			if err == nil {
				return
			}
			if code := realmhook.ErrorCode(err); code != realmhook.EINVALID && code != realmhook.ETOOLARGE {
				t.Fatalf("%s: refusal %v has code %q, want a 4xx one", what, err, code)
			}
		}
		_, err := scheduleRequest(request())
		refusedWell("scheduleRequest", err)
		if err == nil && checkJSONDepth(body, "body") != nil {
			t.Fatal("scheduleRequest accepted a body deeper than the bound")
		}
		var ib installBody
		if err := decodeJSON(request(), &ib); err == nil {
			refusedWell("install body", ib.validate("app", "installed"))
		} else {
			refusedWell("decode install body", err)
		}
		var mb migrationBody
		if err := decodeJSON(request(), &mb); err == nil {
			_, err := migrationID(mb.MigrationID)
			refusedWell("migrationId", err)
		}
		if json.Valid(body) && checkJSONDepth(body, "body") == nil {
			// The depth scanner and the JSON parser agree on strings: a
			// bracket inside one is not nesting.
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatalf("valid JSON within the depth bound does not decode: %v", err)
			}
		}
	})
}

// FuzzOneCanonicalOneKey is defect 3's rule as a property: two request paths
// with the same canonical form (the part a qsh covers) never name two
// different property keys, whatever their encodings.
func FuzzOneCanonicalOneKey(f *testing.F) {
	f.Add("ts", "ts/")
	f.Add("a&b", "a%26b")
	f.Add("a/b", "a%2Fb")
	f.Add("k//", "k/")
	f.Add("x/./y", "x/y")
	f.Add("%C3%A9", "é")
	const prefix = "/realms/eu/api/v1/properties/"
	key := func(rawKey string) (string, bool) {
		decoded, err := url.PathUnescape(rawKey)
		if err != nil {
			return "", false
		}
		k, err := propertyKey(httprouter.Params{{Key: "key", Value: "/" + decoded}})
		return k, err == nil
	}
	f.Fuzz(func(t *testing.T, raw1, raw2 string) {
		c1 := connectjwt.CanonicalRequest("PUT", prefix+raw1, "", "/realms/eu")
		c2 := connectjwt.CanonicalRequest("PUT", prefix+raw2, "", "/realms/eu")
		if c1 != c2 {
			return
		}
		k1, ok1 := key(raw1)
		k2, ok2 := key(raw2)
		for _, k := range []string{k1, k2} {
			if k != "" && (strings.HasSuffix(k, "/") || !utf8.ValidString(k) || len(k) > realmhook.MaxPropertyKeyBytes) {
				t.Fatalf("propertyKey accepted %q", k)
			}
		}
		if ok1 && ok2 && k1 != k2 {
			t.Fatalf("one canonical request %q names two keys %q and %q", c1, k1, k2)
		}
	})
}
