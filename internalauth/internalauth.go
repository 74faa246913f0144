// Package internalauth authenticates calls between realms' processes: every
// internal call carries a short-lived HS256 token signed with internal.secret
// whose audience is the called realm, and the called process refuses any
// call whose token is missing, badly signed, expired, meant for a realm it
// does not serve, or seen before.
package internalauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/golang-jwt/jwt/v5"
)

// TokenTTL is how long a token is good for: one call's worth, so a token
// that leaks (a log, a proxy) is of no use for long.
const TokenTTL = 30 * time.Second

// header carries the token, as a bearer token.
const header = "Authorization"

// ErrRefused is every refusal, whatever its reason: before a token is
// verified, a caller learns nothing from the answer.
var ErrRefused = errors.New("internal call not authenticated")

// Signer mints the tokens of one calling realm.
type Signer struct {
	Secret []byte
	// Issuer is the calling realm.
	Issuer string
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Token returns a token for one call to the realm audience.
func (s Signer) Token(audience string) (string, error) {
	now := clock(s.Now)()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti) // never fails (crypto/rand)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer:    s.Issuer,
		Audience:  jwt.ClaimStrings{audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(TokenTTL)),
		ID:        base64.RawURLEncoding.EncodeToString(jti),
	}).SignedString(s.Secret)
	if err != nil {
		return "", fmt.Errorf("internal token: %w", err)
	}
	return tok, nil
}

// ClientInterceptor puts a fresh token for the realm audience on every call
// (and every retry: each attempt is a call).
func (s Signer) ClientInterceptor(audience string) connect.Interceptor {
	return clientInterceptor{s: s, audience: audience}
}

type clientInterceptor struct {
	s        Signer
	audience string
}

func (c clientInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		tok, err := c.s.Token(c.audience)
		if err != nil {
			return nil, err
		}
		req.Header().Set(header, "Bearer "+tok)
		return next(ctx, req)
	}
}

func (c clientInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		// A signing error cannot be returned from here; a call without a
		// token is refused by the server, which says so.
		if tok, err := c.s.Token(c.audience); err == nil {
			conn.RequestHeader().Set(header, "Bearer "+tok)
		}
		return conn
	}
}

func (clientInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// Verifier checks the tokens of calls to the realms one process serves.
type Verifier struct {
	Secret []byte
	// Realms are the audiences accepted: the realms this process serves.
	Realms []string
	// Leeway is the clock skew allowed on exp and iat.
	Leeway time.Duration
	// Now is the clock; time.Now if nil.
	Now func() time.Time

	mu    sync.Mutex
	seen  map[string]time.Time // jti → expiry, until it expires
	swept time.Time
}

// Check verifies the bearer token in h and returns the called realm (the
// token's audience). Every refusal is ErrRefused; why goes nowhere, so that
// nothing about the secret or the token is told or logged.
func (v *Verifier) Check(h http.Header) (string, error) {
	raw, ok := strings.CutPrefix(h.Get(header), "Bearer ")
	if !ok || raw == "" {
		return "", ErrRefused
	}
	now := clock(v.Now)
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return v.Secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(v.Leeway), jwt.WithTimeFunc(now))
	if err != nil || claims.ID == "" || claims.Issuer == "" || len(claims.Audience) != 1 {
		return "", ErrRefused
	}
	realm := claims.Audience[0]
	// A token minted for another realm is refused here even when it is
	// replayed at this process by someone who saw it on the way there.
	if !slices.Contains(v.Realms, realm) {
		return "", ErrRefused
	}
	// A token longer-lived than any this package mints was not minted by it.
	if claims.ExpiresAt.Sub(claims.IssuedAt.Time) > TokenTTL {
		return "", ErrRefused
	}
	if !v.firstUse(claims.ID, claims.ExpiresAt.Add(v.Leeway), now()) {
		return "", ErrRefused
	}
	return realm, nil
}

// firstUse records jti until it expires and reports whether it was new.
func (v *Verifier) firstUse(jti string, until, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]time.Time{}
	}
	if _, dup := v.seen[jti]; dup {
		return false
	}
	// Forget, once a TokenTTL, what expired: a token past its expiry is
	// refused anyway, so the set holds about two TokenTTLs' worth of calls.
	if now.Sub(v.swept) > TokenTTL {
		for id, exp := range v.seen {
			if now.After(exp) {
				delete(v.seen, id)
			}
		}
		v.swept = now
	}
	v.seen[jti] = until
	return true
}

type realmKey struct{}

// CalledRealm is the realm an authenticated internal call is addressed to
// (its token's audience), set by the Verifier's interceptor.
func CalledRealm(ctx context.Context) (string, bool) {
	r, ok := ctx.Value(realmKey{}).(string)
	return r, ok
}

// Interceptor refuses every call whose token Check refuses, with
// connect.CodeUnauthenticated and one message, and gives the handler the
// called realm (CalledRealm).
func (v *Verifier) Interceptor() connect.Interceptor { return handlerInterceptor{v} }

type handlerInterceptor struct{ v *Verifier }

func (h handlerInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		realm, err := h.v.Check(req.Header())
		if err != nil {
			return nil, connect.NewError(connect.CodeUnauthenticated, err)
		}
		return next(context.WithValue(ctx, realmKey{}, realm), req)
	}
}

func (handlerInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (h handlerInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		realm, err := h.v.Check(conn.RequestHeader())
		if err != nil {
			return connect.NewError(connect.CodeUnauthenticated, err)
		}
		return next(context.WithValue(ctx, realmKey{}, realm), conn)
	}
}

func clock(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}
