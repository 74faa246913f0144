package connectjwt

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds arbitrary tokens and request targets to both verifiers:
// they never panic, every refusal is a *RejectError that does not quote the
// token, a refusal that tells its reason comes after the signature verified,
// and an accepted token carries iat, exp and the request's own qsh.
func FuzzVerify(f *testing.F) {
	secret := []byte("fuzz-secret")
	sign := func(claims jwt.MapClaims, method jwt.SigningMethod, key any) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	target := "/realms/eu/api/v1/properties/k"
	claims := jwt.MapClaims{"iss": "c1", "iat": testNow.Unix(), "exp": testNow.Add(time.Minute).Unix(),
		"qsh": QSH(CanonicalRequest("GET", target, "a=1", "/realms/eu"))}
	f.Add(sign(claims, jwt.SigningMethodHS256, secret), target, "a=1")
	f.Add(sign(claims, jwt.SigningMethodHS512, secret), target, "a=1")
	f.Add(sign(claims, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), target, "a=1")
	f.Add(sign(jwt.MapClaims{"iss": "c1", "exp": "1999999999", "qsh": "context-qsh"}, jwt.SigningMethodHS256, secret), target, "")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.", "/", "")
	f.Add("..", "", "jwt=x")
	f.Add(strings.Repeat("a.", 20), "/%zz/é", "%FF=%E2%82")

	v := Verifier{Leeway: time.Second, Now: fixedNow}
	f.Fuzz(func(t *testing.T, token, path, query string) {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: path, RawQuery: query}, RequestURI: path + "?" + query}
		claims, err := v.VerifyHS256(token, secret, "", r, "/realms/eu", true)
		checkOutcome(t, token, err)
		if err == nil {
			if claims.IssuedAt.IsZero() || claims.ExpiresAt.IsZero() {
				t.Fatalf("accepted a token without iat or exp: %+v", claims)
			}
			if claims.QSH != ContextQSH && claims.QSH != RequestQSH(r, "/realms/eu") {
				t.Fatalf("accepted qsh %q for another request", claims.QSH)
			}
		}
		_, err = v.VerifyInstall(t.Context(), token, &countingKeys{}, r, "/realms/eu", []string{"https://app.example.com/realms/eu"})
		checkOutcome(t, token, err)
		if err == nil {
			t.Fatal("VerifyInstall accepted a token though no key is known")
		}
		if iss, err := UnverifiedIssuer(token); err == nil && iss == "" {
			t.Fatal("UnverifiedIssuer returned an empty issuer without an error")
		}
	})
}

func checkOutcome(t *testing.T, token string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var rej *RejectError
	if !errors.As(err, &rej) {
		t.Fatalf("refusal %v (%T) is not a *RejectError", err, err)
	}
	if len(token) >= 16 && strings.Contains(err.Error(), token) {
		t.Fatalf("refusal quotes the token: %v", err)
	}
	if rej.Verified && rej.Reason == ReasonAlgorithm {
		t.Fatalf("a wrong algorithm cannot have verified: %v", err)
	}
}
