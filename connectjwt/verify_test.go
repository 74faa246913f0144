package connectjwt

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

// Generating RSA keys is slow under -race, so each test binary makes two.
var (
	testKey  = sync.OnceValue(func() *rsa.PrivateKey { return generateKey(2048) })
	otherKey = sync.OnceValue(func() *rsa.PrivateKey { return generateKey(2048) })
)

func generateKey(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(fmt.Sprintf("generate RSA key: %v", err))
	}
	return k
}

// mustSign signs claims with any algorithm and header, including ones the
// verifier must refuse.
func mustSign(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// withClaims returns base with overrides applied; a nil override deletes the claim.
func withClaims(base jwt.MapClaims, overrides jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{}
	for k, v := range base {
		c[k] = v
	}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// mustNotLeakToken fails if the error message carries the token or its signature.
func mustNotLeakToken(t *testing.T, err error, token string) {
	t.Helper()
	if err == nil || token == "" {
		return
	}
	msg := err.Error()
	if strings.Contains(msg, token) {
		t.Fatalf("error message contains the token: %s", msg)
	}
	if i := strings.LastIndexByte(token, '.'); i >= 0 && len(token)-i > 8 && strings.Contains(msg, token[i+1:]) {
		t.Fatalf("error message contains the token's signature: %s", msg)
	}
}

func TestVerifier_VerifyHS256(t *testing.T) {
	const (
		issuer   = "jira:1234"
		basePath = "/realms/eu"
		target   = "https://app.example.com/realms/eu/dare-migration/start?b=2&a=1"
	)
	secret := []byte("shared-secret")
	qsh := RequestQSH(httptest.NewRequest(http.MethodPost, target, nil), basePath)
	base := jwt.MapClaims{
		"iss": issuer,
		"iat": testNow.Unix(),
		"exp": testNow.Add(3 * time.Minute).Unix(),
		"qsh": qsh,
	}
	hs256 := func(overrides jwt.MapClaims) string {
		return mustSign(t, jwt.SigningMethodHS256, secret, nil, withClaims(base, overrides))
	}
	otherPathQSH := QSH(CanonicalRequest(http.MethodPost, "/realms/eu/dare-migration/commit", "a=1&b=2", basePath))

	tests := []struct {
		name         string
		token        string
		secret       []byte
		wantIssuer   string
		allowContext bool
		target       string // defaults to target
		wantReason   string
	}{
		{name: "OK", token: hs256(nil)},
		{name: "OKQueryReordered", token: hs256(nil), target: "https://app.example.com/realms/eu/dare-migration/start?a=1&b=2"},
		{name: "OKTrailingSlash", token: hs256(nil), target: "https://app.example.com/realms/eu/dare-migration/start/?a=1&b=2"},
		{name: "OKAnyIssuerWhenNoneWanted", token: hs256(nil), wantIssuer: ""},
		{name: "WrongSecret", token: hs256(nil), secret: []byte("another-secret"), wantReason: ReasonSignature},
		{name: "EmptySecret", token: hs256(nil), secret: []byte{}, wantReason: ReasonSignature},
		{name: "TamperedPayload", token: tamperPayload(t, hs256(nil), `"iss":"jira:9999"`), wantReason: ReasonSignature},
		{name: "AlgNone", token: mustSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, base), wantReason: ReasonAlgorithm},
		{name: "RS256WhereHS256Expected", token: mustSign(t, jwt.SigningMethodRS256, testKey(), nil, base), wantReason: ReasonAlgorithm},
		{name: "HS384", token: mustSign(t, jwt.SigningMethodHS384, secret, nil, base), wantReason: ReasonAlgorithm},
		{name: "ExpiredBeyondLeeway", token: hs256(jwt.MapClaims{"exp": testNow.Add(-time.Minute).Unix()}), wantReason: ReasonExpired},
		{name: "ExpiredWithinLeeway", token: hs256(jwt.MapClaims{"exp": testNow.Add(-10 * time.Second).Unix()})},
		{name: "IssuedInFutureBeyondLeeway", token: hs256(jwt.MapClaims{"iat": testNow.Add(time.Minute).Unix()}), wantReason: ReasonNotYetValid},
		{name: "IssuedInFutureWithinLeeway", token: hs256(jwt.MapClaims{"iat": testNow.Add(10 * time.Second).Unix()})},
		{name: "NotBeforeInFuture", token: hs256(jwt.MapClaims{"nbf": testNow.Add(time.Minute).Unix()}), wantReason: ReasonNotYetValid},
		{name: "NoExp", token: hs256(jwt.MapClaims{"exp": nil}), wantReason: ReasonMalformed},
		{name: "ExpNotANumber", token: hs256(jwt.MapClaims{"exp": "tomorrow"}), wantReason: ReasonMalformed},
		// The host always sends iat; a token without it is not one the host made.
		{name: "NoIat", token: hs256(jwt.MapClaims{"iat": nil}), wantReason: ReasonMalformed},
		// RFC 7519 NumericDate is a JSON number; a string holding digits is not one.
		{name: "ExpNumericString", token: hs256(jwt.MapClaims{"exp": fmt.Sprint(testNow.Add(3 * time.Minute).Unix())}), wantReason: ReasonMalformed},
		{name: "IatNumericString", token: hs256(jwt.MapClaims{"iat": fmt.Sprint(testNow.Unix())}), wantReason: ReasonMalformed},
		{name: "NbfNumericString", token: hs256(jwt.MapClaims{"nbf": fmt.Sprint(testNow.Unix())}), wantReason: ReasonMalformed},
		// encoding/json matches claim names case-insensitively, so the JWT
		// library reads "EXP" as exp: the form check must see it too.
		{name: "ExpNumericStringOtherCase", token: hs256(jwt.MapClaims{"exp": nil, "EXP": fmt.Sprint(testNow.Add(3 * time.Minute).Unix())}), wantReason: ReasonMalformed},
		{name: "IatNull", token: tamperSigned(t, hs256(jwt.MapClaims{"iat": nil}), secret, `"iat":null`), wantReason: ReasonMalformed},
		{name: "QSHForAnotherPath", token: hs256(jwt.MapClaims{"qsh": otherPathQSH}), wantReason: ReasonQSH},
		{name: "QSHForAnotherQuery", token: hs256(nil), target: "https://app.example.com/realms/eu/dare-migration/start?a=1&b=3", wantReason: ReasonQSH},
		{name: "QSHForAnotherMethod", token: hs256(jwt.MapClaims{"qsh": QSH(CanonicalRequest("GET", "/realms/eu/dare-migration/start", "a=1&b=2", basePath))}), wantReason: ReasonQSH},
		{name: "NoQSH", token: hs256(jwt.MapClaims{"qsh": nil}), wantReason: ReasonQSH},
		{name: "ContextQSHRefused", token: hs256(jwt.MapClaims{"qsh": ContextQSH}), wantReason: ReasonContextQSH},
		{name: "ContextQSHAllowed", token: hs256(jwt.MapClaims{"qsh": ContextQSH}), allowContext: true},
		{name: "WrongIssuer", token: hs256(jwt.MapClaims{"iss": "jira:9999"}), wantIssuer: issuer, wantReason: ReasonIssuer},
		{name: "RightIssuer", token: hs256(nil), wantIssuer: issuer},
		{name: "Garbage", token: "not a token", wantReason: ReasonMalformed},
		{name: "Empty", token: "", wantReason: ReasonMalformed},
		{name: "HeaderNotJSON", token: "bm90IGpzb24.e30.c2ln", wantReason: ReasonMalformed},
	}
	v := Verifier{Leeway: 30 * time.Second, Now: fixedNow}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := secret
			if tt.secret != nil {
				key = tt.secret
			}
			u := target
			if tt.target != "" {
				u = tt.target
			}
			r := httptest.NewRequest(http.MethodPost, u, nil)
			claims, err := v.VerifyHS256(tt.token, key, tt.wantIssuer, r, basePath, tt.allowContext)
			mustNotLeakToken(t, err, tt.token)
			if tt.wantReason != "" {
				mustReject(t, err, tt.wantReason)
				return
			}
			if err != nil {
				t.Fatalf("VerifyHS256: %v", err)
			}
			if claims.Issuer != issuer {
				t.Errorf("Issuer = %q, want %q", claims.Issuer, issuer)
			}
			if claims.ExpiresAt.IsZero() || claims.IssuedAt.IsZero() {
				t.Errorf("times not decoded: iat %v exp %v", claims.IssuedAt, claims.ExpiresAt)
			}
			if claims.QSH != qsh && claims.QSH != ContextQSH {
				t.Errorf("QSH = %q, want %q", claims.QSH, qsh)
			}
		})
	}
}

// tamperPayload replaces the token's payload with one that has extra JSON
// spliced in, keeping the original signature.
func tamperPayload(t *testing.T, token, extra string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := decodeSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(payload), "{", "{"+extra+",", 1)
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
	return strings.Join(parts, ".")
}

// tamperSigned splices extra JSON into the token's payload and signs it again
// with secret (HS256), so the claim set reaches the checks after the signature.
func tamperSigned(t *testing.T, token string, secret []byte, extra string) string {
	t.Helper()
	parts := strings.Split(tamperPayload(t, token, extra), ".")
	sig, err := jwt.SigningMethodHS256.Sign(parts[0]+"."+parts[1], secret)
	if err != nil {
		t.Fatal(err)
	}
	return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// countingKeys is a KeySource over a fixed map that counts its calls.
type countingKeys struct {
	keys  map[string]*rsa.PublicKey
	calls atomic.Int32
}

func (k *countingKeys) PublicKey(_ context.Context, kid string) (*rsa.PublicKey, error) {
	k.calls.Add(1)
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	return nil, errors.New("no such key")
}

func TestVerifier_VerifyInstall(t *testing.T) {
	const (
		kid      = "install-key-1"
		basePath = "/realms/eu"
		baseURL  = "https://app.example.com/realms/eu"
		target   = "https://app.example.com/realms/eu/installed"
	)
	audiences := []string{"https://app.example.com", "https://app.example.com/realms/eu/"}
	qsh := RequestQSH(httptest.NewRequest(http.MethodPost, target, nil), basePath)
	base := jwt.MapClaims{
		"iss": "jira:1234",
		"aud": []string{baseURL},
		"iat": testNow.Unix(),
		"exp": testNow.Add(3 * time.Minute).Unix(),
		"qsh": qsh,
	}
	rs256 := func(kid string, overrides jwt.MapClaims) string {
		return mustSign(t, jwt.SigningMethodRS256, testKey(), map[string]any{"kid": kid}, withClaims(base, overrides))
	}

	tests := []struct {
		name          string
		token         string
		audiences     []string // defaults to audiences
		wantReason    string
		wantKeyLookup bool
	}{
		{name: "OK", token: rs256(kid, nil), wantKeyLookup: true},
		{name: "AudienceWithTrailingSlash", token: rs256(kid, jwt.MapClaims{"aud": baseURL + "/"}), wantKeyLookup: true},
		{name: "AudienceAsString", token: rs256(kid, jwt.MapClaims{"aud": "https://app.example.com"}), wantKeyLookup: true},
		{name: "AudienceListedWithoutSlash", token: rs256(kid, nil), audiences: []string{baseURL}, wantKeyLookup: true},
		{name: "AudienceMismatch", token: rs256(kid, jwt.MapClaims{"aud": "https://evil.example.com"}), wantReason: ReasonAudience, wantKeyLookup: true},
		{name: "AudiencePrefixIsNotAMatch", token: rs256(kid, jwt.MapClaims{"aud": "https://app.example.com/realms"}), wantReason: ReasonAudience, wantKeyLookup: true},
		{name: "NoAudience", token: rs256(kid, jwt.MapClaims{"aud": nil}), wantReason: ReasonAudience, wantKeyLookup: true},
		{name: "NoAudiencesConfigured", token: rs256(kid, nil), audiences: []string{}, wantReason: ReasonAudience, wantKeyLookup: true},
		{name: "HS256WhereRS256Expected", token: mustSign(t, jwt.SigningMethodHS256, []byte("secret"), map[string]any{"kid": kid}, base), wantReason: ReasonAlgorithm},
		{name: "AlgNone", token: mustSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": kid}, base), wantReason: ReasonAlgorithm},
		{name: "EmptyKid", token: rs256("", nil), wantReason: ReasonKeyID},
		{name: "NoKid", token: mustSign(t, jwt.SigningMethodRS256, testKey(), nil, base), wantReason: ReasonKeyID},
		{name: "DotDotKid", token: rs256("../x", nil), wantReason: ReasonKeyID},
		{name: "SlashKid", token: rs256("a/b", nil), wantReason: ReasonKeyID},
		{name: "EmbeddedDotDotKid", token: rs256("a..b", nil), wantReason: ReasonKeyID},
		{name: "QueryKid", token: rs256("a?b=c", nil), wantReason: ReasonKeyID},
		{name: "LongKid", token: rs256(strings.Repeat("k", 129), nil), wantReason: ReasonKeyID},
		{name: "UnknownKid", token: rs256("unknown-key", nil), wantReason: ReasonKeyFetch, wantKeyLookup: true},
		{name: "SignedByOtherKey", token: mustSign(t, jwt.SigningMethodRS256, otherKey(), map[string]any{"kid": kid}, base), wantReason: ReasonSignature, wantKeyLookup: true},
		{name: "Expired", token: rs256(kid, jwt.MapClaims{"exp": testNow.Add(-time.Minute).Unix()}), wantReason: ReasonExpired, wantKeyLookup: true},
		{name: "NoIat", token: rs256(kid, jwt.MapClaims{"iat": nil}), wantReason: ReasonMalformed, wantKeyLookup: true},
		{name: "ExpNumericString", token: rs256(kid, jwt.MapClaims{"exp": fmt.Sprint(testNow.Add(time.Minute).Unix())}), wantReason: ReasonMalformed, wantKeyLookup: true},
		{name: "QSHForAnotherPath", token: rs256(kid, jwt.MapClaims{"qsh": QSH("POST&/uninstalled&")}), wantReason: ReasonQSH, wantKeyLookup: true},
		{name: "ContextQSHRefused", token: rs256(kid, jwt.MapClaims{"qsh": ContextQSH}), wantReason: ReasonContextQSH, wantKeyLookup: true},
		{name: "Garbage", token: "x.y", wantReason: ReasonMalformed},
	}
	v := Verifier{Leeway: 30 * time.Second, Now: fixedNow}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := &countingKeys{keys: map[string]*rsa.PublicKey{kid: &testKey().PublicKey}}
			auds := audiences
			if tt.audiences != nil {
				auds = tt.audiences
			}
			r := httptest.NewRequest(http.MethodPost, target, nil)
			claims, err := v.VerifyInstall(context.Background(), tt.token, keys, r, basePath, auds)
			mustNotLeakToken(t, err, tt.token)
			if got := keys.calls.Load() > 0; got != tt.wantKeyLookup {
				t.Errorf("key looked up = %v, want %v", got, tt.wantKeyLookup)
			}
			if tt.wantReason != "" {
				mustReject(t, err, tt.wantReason)
				return
			}
			if err != nil {
				t.Fatalf("VerifyInstall: %v", err)
			}
			if claims.Issuer != "jira:1234" || len(claims.Audience) != 1 {
				t.Errorf("claims = %+v, want iss jira:1234 and one aud", claims)
			}
		})
	}
}

func TestSigner_RoundTrip(t *testing.T) {
	const (
		issuer  = "confluence:42"
		baseURL = "https://app.example.com/realms/eu"
	)
	secret := []byte("round-trip-secret")
	tests := []struct {
		method, url, requestURL string // requestURL is how the request arrives; "" means url
	}{
		{method: "POST", url: baseURL + "/dare-migration/schedule"},
		{method: "GET", url: baseURL + "/dare-migration/status?migrationId=7"},
		{method: "get", url: baseURL + "/api/v1/properties?prefix=a+b&limit=10&cursor=x%2Fy", requestURL: baseURL + "/api/v1/properties?cursor=x%2Fy&limit=10&prefix=a%20b"},
		{method: "PUT", url: baseURL + "/api/v1/properties/a%2Fb&c"},
		{method: "GET", url: baseURL + "/"},
	}
	s := Signer{Now: fixedNow, TTL: time.Minute}
	v := Verifier{Now: fixedNow}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.url, func(t *testing.T) {
			requestURL := tt.url
			if tt.requestURL != "" {
				requestURL = tt.requestURL
			}
			base := mustParseURL(t, baseURL)

			t.Run("HS256", func(t *testing.T) {
				tok, err := s.HS256(secret, issuer, tt.method, tt.url, baseURL)
				if err != nil {
					t.Fatalf("HS256: %v", err)
				}
				r := httptest.NewRequest(strings.ToUpper(tt.method), requestURL, nil)
				r.Header.Set("Authorization", "JWT "+tok)
				got, err := TokenFromRequest(r)
				if err != nil {
					t.Fatal(err)
				}
				claims, err := v.VerifyHS256(got, secret, issuer, r, base.EscapedPath(), false)
				if err != nil {
					t.Fatalf("VerifyHS256: %v", err)
				}
				if !claims.ExpiresAt.Equal(testNow.Add(time.Minute)) || !claims.IssuedAt.Equal(testNow) {
					t.Errorf("iat %v exp %v, want %v and %v", claims.IssuedAt, claims.ExpiresAt, testNow, testNow.Add(time.Minute))
				}
			})
			t.Run("RS256", func(t *testing.T) {
				tok, err := s.RS256(testKey(), "k1", issuer, baseURL, tt.method, tt.url, baseURL)
				if err != nil {
					t.Fatalf("RS256: %v", err)
				}
				keys := &countingKeys{keys: map[string]*rsa.PublicKey{"k1": &testKey().PublicKey}}
				r := httptest.NewRequest(strings.ToUpper(tt.method), requestURL, nil)
				claims, err := v.VerifyInstall(context.Background(), tok, keys, r, base.EscapedPath(), []string{baseURL + "/"})
				if err != nil {
					t.Fatalf("VerifyInstall: %v", err)
				}
				if claims.Issuer != issuer {
					t.Errorf("Issuer = %q, want %q", claims.Issuer, issuer)
				}
			})
		})
	}

	t.Run("HS256Context", func(t *testing.T) {
		tok, err := s.HS256Context(secret, issuer)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", baseURL+"/anything", nil)
		if _, err := v.VerifyHS256(tok, secret, issuer, r, "/realms/eu", true); err != nil {
			t.Errorf("allowed context token: %v", err)
		}
		_, err = v.VerifyHS256(tok, secret, issuer, r, "/realms/eu", false)
		mustReject(t, err, ReasonContextQSH)
	})

	t.Run("DefaultTTL", func(t *testing.T) {
		tok, err := Signer{Now: fixedNow}.HS256(secret, issuer, "GET", baseURL+"/x", baseURL)
		if err != nil {
			t.Fatal(err)
		}
		late := Verifier{Now: func() time.Time { return testNow.Add(DefaultTokenTTL + time.Second) }}
		_, err = late.VerifyHS256(tok, secret, issuer, httptest.NewRequest("GET", baseURL+"/x", nil), "/realms/eu", false)
		mustReject(t, err, ReasonExpired)
	})
}

func TestSigner_BadInput(t *testing.T) {
	s := Signer{Now: fixedNow}
	tests := []struct {
		name string
		sign func() (string, error)
	}{
		{"HS256EmptySecret", func() (string, error) { return s.HS256(nil, "i", "GET", "https://a/x", "https://a") }},
		{"HS256EmptyMethod", func() (string, error) { return s.HS256([]byte("s"), "i", "", "https://a/x", "https://a") }},
		{"HS256BadURL", func() (string, error) { return s.HS256([]byte("s"), "i", "GET", "https://a/%zz", "https://a") }},
		{"HS256BadBaseURL", func() (string, error) { return s.HS256([]byte("s"), "i", "GET", "https://a/x", "://a") }},
		{"HS256ContextEmptySecret", func() (string, error) { return s.HS256Context(nil, "i") }},
		{"RS256NilKey", func() (string, error) { return s.RS256(nil, "k", "i", "https://a", "GET", "https://a/x", "https://a") }},
		{"RS256BadKid", func() (string, error) {
			return s.RS256(testKey(), "../k", "i", "https://a", "GET", "https://a/x", "https://a")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := tt.sign()
			if err == nil {
				t.Fatalf("signed %q, want an error", tok)
			}
		})
	}
}
