package internalauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/golang-jwt/jwt/v5"

	peerv1 "github.com/realmhook/realmhook/gen/realmhook/peer/v1"
	"github.com/realmhook/realmhook/gen/realmhook/peer/v1/peerv1connect"
	"github.com/realmhook/realmhook/internalauth"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

// fixedClock is a clock tests move by hand.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

func TestVerifier_Check(t *testing.T) {
	clock := &fixedClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	signer := internalauth.Signer{Secret: secret, Issuer: "US", Now: clock.now}
	newVerifier := func() *internalauth.Verifier {
		return &internalauth.Verifier{Secret: secret, Realms: []string{"EU"}, Leeway: time.Second, Now: clock.now}
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	mustToken := func(t *testing.T, s internalauth.Signer, aud string) string {
		t.Helper()
		tok, err := s.Token(aud)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	signed := func(t *testing.T, claims jwt.RegisteredClaims, key []byte) string {
		t.Helper()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	t.Run("OK", func(t *testing.T) {
		realm, err := newVerifier().Check(bearer(mustToken(t, signer, "EU")))
		if err != nil || realm != "EU" {
			t.Fatalf("Check = %q, %v; want EU", realm, err)
		}
	})
	refused := []struct {
		name   string
		header func(t *testing.T) http.Header
	}{
		{"Missing", func(t *testing.T) http.Header { return http.Header{} }},
		{"NotBearer", func(t *testing.T) http.Header {
			return http.Header{"Authorization": {"JWT " + mustToken(t, signer, "EU")}}
		}},
		{"Garbage", func(t *testing.T) http.Header { return bearer("not.a.token") }},
		{"WrongSecret", func(t *testing.T) http.Header {
			return bearer(mustToken(t, internalauth.Signer{Secret: []byte("another secret, long enough"), Issuer: "US", Now: clock.now}, "EU"))
		}},
		{"WrongAudience", func(t *testing.T) http.Header { return bearer(mustToken(t, signer, "US")) }},
		{"Expired", func(t *testing.T) http.Header {
			old := internalauth.Signer{Secret: secret, Issuer: "US", Now: func() time.Time { return clock.t.Add(-internalauth.TokenTTL - 2*time.Second) }}
			return bearer(mustToken(t, old, "EU"))
		}},
		{"NoExpiry", func(t *testing.T) http.Header {
			return bearer(signed(t, jwt.RegisteredClaims{Issuer: "US", Audience: jwt.ClaimStrings{"EU"}, ID: "x", IssuedAt: jwt.NewNumericDate(clock.t)}, secret))
		}},
		{"LongLived", func(t *testing.T) http.Header {
			return bearer(signed(t, jwt.RegisteredClaims{Issuer: "US", Audience: jwt.ClaimStrings{"EU"}, ID: "x",
				IssuedAt: jwt.NewNumericDate(clock.t), ExpiresAt: jwt.NewNumericDate(clock.t.Add(time.Hour))}, secret))
		}},
		{"NoID", func(t *testing.T) http.Header {
			return bearer(signed(t, jwt.RegisteredClaims{Issuer: "US", Audience: jwt.ClaimStrings{"EU"},
				IssuedAt: jwt.NewNumericDate(clock.t), ExpiresAt: jwt.NewNumericDate(clock.t.Add(time.Second))}, secret))
		}},
		{"TwoAudiences", func(t *testing.T) http.Header {
			return bearer(signed(t, jwt.RegisteredClaims{Issuer: "US", Audience: jwt.ClaimStrings{"EU", "US"}, ID: "x",
				IssuedAt: jwt.NewNumericDate(clock.t), ExpiresAt: jwt.NewNumericDate(clock.t.Add(time.Second))}, secret))
		}},
		{"AlgNone", func(t *testing.T) http.Header {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{Issuer: "US", Audience: jwt.ClaimStrings{"EU"}, ID: "x",
				IssuedAt: jwt.NewNumericDate(clock.t), ExpiresAt: jwt.NewNumericDate(clock.t.Add(time.Second))}).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return bearer(tok)
		}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if realm, err := newVerifier().Check(tc.header(t)); !errors.Is(err, internalauth.ErrRefused) {
				t.Fatalf("Check = %q, %v; want ErrRefused", realm, err)
			}
		})
	}
	t.Run("Replayed", func(t *testing.T) {
		v := newVerifier()
		h := bearer(mustToken(t, signer, "EU"))
		if _, err := v.Check(h); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Check(h); !errors.Is(err, internalauth.ErrRefused) {
			t.Fatalf("second use: %v, want ErrRefused", err)
		}
		// Long after, the entry is swept but the token has expired.
		clock.t = clock.t.Add(time.Hour)
		if _, err := v.Check(h); !errors.Is(err, internalauth.ErrRefused) {
			t.Fatalf("use after expiry: %v, want ErrRefused", err)
		}
	})
}

// unimplemented answers every call CodeUnimplemented, so a call that gets
// past the interceptor is told apart from one refused by it.
type unimplemented struct {
	peerv1connect.UnimplementedTransferServiceHandler
}

func TestInterceptor_OverConnect(t *testing.T) {
	v := &internalauth.Verifier{Secret: secret, Realms: []string{"EU"}, Leeway: time.Second}
	path, h := peerv1connect.NewTransferServiceHandler(unimplemented{}, connect.WithInterceptors(v.Interceptor()))
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	call := func(t *testing.T, opts ...connect.ClientOption) (unary, stream error) {
		t.Helper()
		c := peerv1connect.NewTransferServiceClient(srv.Client(), srv.URL, opts...)
		_, unary = c.CheckTables(context.Background(), connect.NewRequest(&peerv1.CheckTablesRequest{}))
		s := c.WriteRows(context.Background())
		_ = s.Send(&peerv1.WriteRowsRequest{})
		_, stream = s.CloseAndReceive()
		return unary, stream
	}
	signer := internalauth.Signer{Secret: secret, Issuer: "US"}
	u, s := call(t, connect.WithInterceptors(signer.ClientInterceptor("EU")))
	if connect.CodeOf(u) != connect.CodeUnimplemented || connect.CodeOf(s) != connect.CodeUnimplemented {
		t.Fatalf("authenticated calls: %v, %v; want them to reach the handler", u, s)
	}
	var messages []string
	for name, opts := range map[string][]connect.ClientOption{
		"none":        nil,
		"otherRealm":  {connect.WithInterceptors(signer.ClientInterceptor("US"))},
		"otherSecret": {connect.WithInterceptors(internalauth.Signer{Secret: []byte("a different secret!!"), Issuer: "US"}.ClientInterceptor("EU"))},
	} {
		u, s := call(t, opts...)
		for _, err := range []error{u, s} {
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Errorf("%s: %v, want unauthenticated", name, err)
				continue
			}
			var ce *connect.Error
			errors.As(err, &ce)
			messages = append(messages, ce.Message())
		}
	}
	for _, m := range messages {
		if m != messages[0] {
			t.Errorf("refusals differ: %q and %q", m, messages[0])
		}
	}
}
