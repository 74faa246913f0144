package forgefit_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/forgefit"
)

const appARI = "ari:cloud:ecosystem::app/406d303d-0393-4ec4-ad7c-1435be94583a"

func mustSigner(t *testing.T, kid string) *forgefit.Signer {
	t.Helper()
	s, err := forgefit.NewSigner(kid)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustJWKS serves s's JWKS and counts the fetches.
func mustJWKS(t *testing.T, s *forgefit.Signer) (string, *atomic.Int32) {
	t.Helper()
	body, err := s.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

func mustVerifier(t *testing.T, url string, now time.Time) *forgefit.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	keys, err := forgefit.NewRemoteKeys(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &forgefit.Verifier{AppARI: appARI, Keys: keys, Leeway: 30 * time.Second, Now: func() time.Time { return now }}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	signer := mustSigner(t, "key-1")
	url, _ := mustJWKS(t, signer)
	now := time.Now()
	v := mustVerifier(t, url, now)
	inv := forgefit.Invocation{AppARI: appARI, InstallationID: "8d5f651a-b2e9-4b38-aac6-30abc7f3effb", CloudID: "4869c4ef-cb0d-4108-8243-8929ac7cc1fa", IssuedAt: now}

	t.Run("OK", func(t *testing.T) {
		tok, err := signer.Mint(inv)
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatal(err)
		}
		if got := forgefit.InstallationID(c.App.InstallationID); got != "8d5f651a-b2e9-4b38-aac6-30abc7f3effb" {
			t.Errorf("installation %q", got)
		}
		if c.CloudID() != inv.CloudID {
			t.Errorf("cloudId %q", c.CloudID())
		}
	})

	other := mustSigner(t, "key-1")
	pubDER, err := x509.MarshalPKIXPublicKey(&signer.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	claims := func(edit func(*forgefit.Claims)) *forgefit.Claims {
		c := inv.Claims()
		edit(c)
		return c
	}
	sign := func(s *forgefit.Signer, c jwt.Claims) string {
		tok, err := s.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, tc := range []struct {
		name, token, reason string
	}{
		{"WrongAudience", sign(signer, claims(func(c *forgefit.Claims) {
			c.Audience = jwt.ClaimStrings{"ari:cloud:ecosystem::app/00000000-0000-0000-0000-000000000000"}
		})), connectjwt.ReasonAudience},
		{"WrongIssuer", sign(signer, claims(func(c *forgefit.Claims) { c.Issuer = "someone" })), connectjwt.ReasonIssuer},
		{"WrongAppID", sign(signer, claims(func(c *forgefit.Claims) { c.App.ID = "ari:cloud:ecosystem::app/00000000-0000-0000-0000-000000000000" })), forgefit.ReasonWrongApp},
		{"UnknownKid", sign(mustSigner(t, "key-2"), inv.Claims()), connectjwt.ReasonKeyID},
		{"OtherKeySameKid", sign(other, inv.Claims()), connectjwt.ReasonSignature},
		{"HS256WithPublicKey", hs256(t, inv.Claims(), pubPEM), connectjwt.ReasonSignature},
		{"AlgNone", algNone(t, inv.Claims()), connectjwt.ReasonSignature},
		{"Expired", sign(signer, claims(func(c *forgefit.Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-31 * time.Second)) })), connectjwt.ReasonExpired},
		{"NotYetValid", sign(signer, claims(func(c *forgefit.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Minute)) })), connectjwt.ReasonNotYetValid},
		{"IssuedInTheFuture", sign(signer, claims(func(c *forgefit.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Minute)) })), connectjwt.ReasonNotYetValid},
		{"NoExpiry", sign(signer, claims(func(c *forgefit.Claims) { c.ExpiresAt = nil })), connectjwt.ReasonMalformed},
		{"NoInstallation", sign(signer, claims(func(c *forgefit.Claims) { c.App.InstallationID = "" })), connectjwt.ReasonMalformed},
		{"Garbage", "a.b.c", connectjwt.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.token)
			var rej *connectjwt.RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("err = %v, want a RejectError", err)
			}
			if rej.Reason != tc.reason {
				t.Errorf("reason %q, want %q (%v)", rej.Reason, tc.reason, err)
			}
			if rej.Verified {
				t.Error("a refused FIT is never Verified")
			}
		})
	}
}

// TestUnknownKidRefreshesOnce: a rotated key is found by one refresh; a
// burst of made-up kids does not make one fetch each.
func TestUnknownKidRefreshesOnce(t *testing.T) {
	t.Parallel()
	first := mustSigner(t, "key-1")
	rotated := mustSigner(t, "key-2")
	serving := atomic.Pointer[[]byte]{}
	b1, _ := first.JWKS()
	b2, _ := rotated.JWKS()
	serving.Store(&b1)
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		_, _ = w.Write(*serving.Load())
	}))
	t.Cleanup(srv.Close)
	v := mustVerifier(t, srv.URL, time.Now())
	serving.Store(&b2)
	tok, _ := rotated.Mint(forgefit.Invocation{AppARI: appARI, InstallationID: "i-1"})
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	before := fetches.Load()
	for i := range 20 {
		s := mustSignerFast(t, first, "made-up-"+string(rune('a'+i)))
		tok, _ := s.Mint(forgefit.Invocation{AppARI: appARI, InstallationID: "i-1"})
		_, _ = v.Verify(context.Background(), tok)
	}
	if n := fetches.Load() - before; n > 1 {
		t.Errorf("%d JWKS fetches for 20 unknown kids; want at most 1", n)
	}
}

// mustSignerFast reuses a key under another kid (generating 20 keys is slow).
func mustSignerFast(t *testing.T, s *forgefit.Signer, kid string) *forgefit.Signer {
	t.Helper()
	return &forgefit.Signer{Key: s.Key, KID: kid}
}

func TestJWKSTooLarge(t *testing.T) {
	t.Parallel()
	signer := mustSigner(t, "key-1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", forgefit.JWKSMaxBytes) + `"}`))
	}))
	t.Cleanup(srv.Close)
	v := mustVerifier(t, srv.URL, time.Now())
	tok, _ := signer.Mint(forgefit.Invocation{AppARI: appARI, InstallationID: "i-1"})
	if _, err := v.Verify(context.Background(), tok); err == nil {
		t.Fatal("verified against an oversized JWKS")
	}
}

func TestAppARI(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"406D303D-0393-4ec4-ad7c-1435be94583a":                          appARI,
		"ari:cloud:ecosystem::app/406d303d-0393-4ec4-ad7c-1435be94583a": appARI,
		"my-app":                    "",
		"ari:cloud:ecosystem::app/": "",
	} {
		got, err := forgefit.AppARI(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("AppARI(%q) = %q, %v", in, got, err)
		}
	}
}

func hs256(t *testing.T, c *forgefit.Claims, key []byte) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["kid"] = "key-1"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func algNone(t *testing.T, c *forgefit.Claims) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "none", "kid": "key-1", "typ": "JWT"})
	p, _ := json.Marshal(c)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(p) + "."
}
