package connectjwt

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// RequestQSH returns the qsh of an incoming request made to a base URL whose
// path is basePath.
func RequestQSH(r *http.Request, basePath string) string {
	return QSH(CanonicalRequest(r.Method, RequestPath(r), r.URL.RawQuery, basePath))
}

// Claims are the verified claims of a Connect token.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	IssuedAt  time.Time // zero when the token has no iat
	ExpiresAt time.Time
	QSH       string
	Context   json.RawMessage // the "context" claim as sent, nil when absent
}

// connectClaims is the wire form: the registered claims plus Connect's own.
type connectClaims struct {
	jwt.RegisteredClaims
	QSH     string          `json:"qsh,omitempty"`
	Context json.RawMessage `json:"context,omitempty"`
}

func (c *connectClaims) public() *Claims {
	out := &Claims{
		Issuer:   c.Issuer,
		Subject:  c.Subject,
		Audience: []string(c.Audience),
		QSH:      c.QSH,
		Context:  c.Context,
	}
	if c.IssuedAt != nil {
		out.IssuedAt = c.IssuedAt.Time
	}
	if c.ExpiresAt != nil {
		out.ExpiresAt = c.ExpiresAt.Time
	}
	return out
}

// Verifier verifies Connect tokens. The zero value allows no clock skew.
type Verifier struct {
	Leeway time.Duration    // clock skew allowed on exp, iat and nbf
	Now    func() time.Time // nil means time.Now
}

func (v Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// VerifyHS256 verifies a token the host signed with the tenant's shared secret:
// the algorithm must be HS256 whatever else the header says; exp is required
// and, like iat and nbf, checked with Leeway; iss must equal wantIssuer unless
// wantIssuer is ""; qsh must equal RequestQSH(r, basePath), and ContextQSH is
// accepted only when allowContextQSH.
func (v Verifier) VerifyHS256(token string, secret []byte, wantIssuer string, r *http.Request, basePath string, allowContextQSH bool) (*Claims, error) {
	c, err := v.verifyHS256(token, func(string) ([]byte, error) { return secret, nil }, r, basePath, allowContextQSH)
	if err != nil {
		return nil, err
	}
	if wantIssuer != "" && c.Issuer != wantIssuer {
		return nil, verifiedReject(ReasonIssuer, "iss is %s, want %s", quoteShort(c.Issuer), quoteShort(wantIssuer))
	}
	return c, nil
}

// VerifyHS256For is VerifyHS256 for a token whose secret depends on who sent
// it: once the token is decoded, secretFor gets its iss and returns the
// shared secret to verify it with, or an error, which is returned as is. The
// token is decoded once, where UnverifiedIssuer followed by VerifyHS256
// decodes it twice; the routed request path calls this.
func (v Verifier) VerifyHS256For(token string, secretFor func(issuer string) ([]byte, error), r *http.Request, basePath string, allowContextQSH bool) (*Claims, error) {
	return v.verifyHS256(token, secretFor, r, basePath, allowContextQSH)
}

func (v Verifier) verifyHS256(token string, secretFor func(issuer string) ([]byte, error), r *http.Request, basePath string, allowContextQSH bool) (*Claims, error) {
	h, payload, err := splitToken(token)
	if err != nil {
		return nil, err
	}
	if h.Alg != jwt.SigningMethodHS256.Alg() {
		return nil, reject(ReasonAlgorithm, "token is signed with %s, want HS256", quoteShort(h.Alg))
	}
	// The library decodes the claims before it asks for the key, so the key
	// is found from the decoded iss; secretFor's own error is kept apart
	// from the library's, to be returned as is.
	var keyErr error
	c, err := v.parse(token, payload, jwt.SigningMethodHS256.Alg(), func(c *connectClaims) (any, error) {
		if c.Issuer == "" {
			keyErr = reject(ReasonIssuer, "token has no iss claim (a string naming the clientKey)")
			return nil, keyErr
		}
		secret, err := secretFor(c.Issuer)
		if err != nil {
			keyErr = err
			return nil, err
		}
		if len(secret) == 0 {
			// An empty HMAC key is a configuration error that would let anyone sign.
			keyErr = reject(ReasonSignature, "no shared secret to verify the token with")
			return nil, keyErr
		}
		return secret, nil
	})
	if keyErr != nil {
		return nil, keyErr
	}
	if err != nil {
		return nil, err
	}
	if err := checkQSH(c.QSH, r, basePath, allowContextQSH); err != nil {
		return nil, err
	}
	return c.public(), nil
}

// KeySource gives the RSA public key for a signed-install kid.
type KeySource interface {
	PublicKey(ctx context.Context, kid string) (*rsa.PublicKey, error)
}

// VerifyInstall verifies a signed-install token (installed, uninstalled): RS256
// only; the header's kid must pass ValidKeyID and name a key keys can give;
// signature; exp and iat with Leeway; qsh against the request (ContextQSH
// refused); aud must contain one of audiences, trailing "/" ignored. The caller
// still checks iss against the body's clientKey.
func (v Verifier) VerifyInstall(ctx context.Context, token string, keys KeySource, r *http.Request, basePath string, audiences []string) (*Claims, error) {
	h, payload, err := splitToken(token)
	if err != nil {
		return nil, err
	}
	if h.Alg != jwt.SigningMethodRS256.Alg() {
		return nil, reject(ReasonAlgorithm, "token is signed with %s, want RS256", quoteShort(h.Alg))
	}
	if !ValidKeyID(h.Kid) {
		return nil, reject(ReasonKeyID, "kid %s must be 1 to 128 characters of A-Z a-z 0-9 . _ - without \"..\"", quoteShort(h.Kid))
	}
	if keys == nil {
		return nil, reject(ReasonKeyFetch, "no key source configured")
	}
	pub, err := keys.PublicKey(ctx, h.Kid)
	if err != nil {
		return nil, &RejectError{Reason: ReasonKeyFetch, Detail: fmt.Sprintf("cannot get the signed-install public key: %v", err), Err: err}
	}
	c, err := v.parse(token, payload, jwt.SigningMethodRS256.Alg(), func(*connectClaims) (any, error) { return pub, nil })
	if err != nil {
		return nil, err
	}
	if err := checkQSH(c.QSH, r, basePath, false); err != nil {
		return nil, err
	}
	if !audienceMatches(c.Audience, audiences) {
		return nil, verifiedReject(ReasonAudience, "aud %s names none of the app's base URLs %s",
			quoteShort(strings.Join(c.Audience, ", ")), strings.Join(audiences, ", "))
	}
	return c.public(), nil
}

// parse verifies signature and times with the one algorithm allowed, then
// holds the claims to the host's form: iat is required like exp, and every
// NumericDate must be a JSON number (RFC 7519 §2), not a string of digits,
// which the JWT library would otherwise read as one.
func (v Verifier) parse(token string, payload []byte, alg string, key func(*connectClaims) (any, error)) (*connectClaims, error) {
	now := v.now()
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{alg}),
		jwt.WithLeeway(v.Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	var c connectClaims
	_, err := p.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return key(&c) })
	if err == nil {
		if err := checkClaimForms(payload, &c); err != nil {
			return nil, err
		}
		return &c, nil
	}
	// The library verifies the signature before it validates the times, so a
	// time error comes from a token signed with key: its reason may be told.
	// Claims are decoded before times are validated, so they can explain it.
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, &RejectError{Reason: ReasonMalformed, Detail: "token or its claims cannot be decoded", Err: err}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, &RejectError{Reason: ReasonSignature, Detail: "signature does not verify with the " + alg + " key", Err: err}
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return nil, &RejectError{Reason: ReasonMalformed, Detail: "token has no exp claim", Err: err, Verified: true}
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, &RejectError{Reason: ReasonExpired, Detail: fmt.Sprintf("expired at %s; now %s, leeway %s",
			formatTime(c.ExpiresAt), now.UTC().Format(time.RFC3339), v.Leeway), Err: err, Verified: true}
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return nil, &RejectError{Reason: ReasonNotYetValid, Detail: fmt.Sprintf("issued at %s, in the future; now %s, leeway %s",
			formatTime(c.IssuedAt), now.UTC().Format(time.RFC3339), v.Leeway), Err: err, Verified: true}
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, &RejectError{Reason: ReasonNotYetValid, Detail: fmt.Sprintf("not valid before %s; now %s, leeway %s",
			formatTime(c.NotBefore), now.UTC().Format(time.RFC3339), v.Leeway), Err: err, Verified: true}
	default:
		return nil, &RejectError{Reason: ReasonMalformed, Detail: "token cannot be verified", Err: err}
	}
}

// checkClaimForms checks what the JWT library lets through in a verified
// token: a missing iat, and NumericDates sent as JSON strings.
func checkClaimForms(payload []byte, c *connectClaims) error {
	if c.IssuedAt == nil {
		return verifiedReject(ReasonMalformed, "token has no iat claim")
	}
	// A struct, not a map of every claim: this runs on every request, and
	// encoding/json matches its fields the way it matches the JWT library's
	// (case-insensitively, the last duplicate winning), so it sees exactly
	// the values the library read.
	var raw struct {
		Exp json.RawMessage `json:"exp"`
		Iat json.RawMessage `json:"iat"`
		Nbf json.RawMessage `json:"nbf"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return &RejectError{Reason: ReasonMalformed, Detail: "payload is not a JSON object", Err: err, Verified: true}
	}
	for _, f := range [...]struct {
		name string
		v    json.RawMessage
	}{{"exp", raw.Exp}, {"iat", raw.Iat}, {"nbf", raw.Nbf}} {
		name, v := f.name, f.v
		if v == nil {
			continue
		}
		if v = bytes.TrimSpace(v); len(v) == 0 || !(v[0] == '-' || '0' <= v[0] && v[0] <= '9') {
			return verifiedReject(ReasonMalformed, "%s must be a JSON number of seconds (a NumericDate), not %s", name, quoteShort(string(v)))
		}
	}
	return nil
}

func checkQSH(got string, r *http.Request, basePath string, allowContextQSH bool) error {
	switch {
	case got == "":
		return verifiedReject(ReasonQSH, "token has no qsh claim")
	case got == ContextQSH:
		if allowContextQSH {
			return nil
		}
		return verifiedReject(ReasonContextQSH, "a frontend token (qsh %q) cannot call this endpoint", ContextQSH)
	case r == nil || r.URL == nil:
		return verifiedReject(ReasonQSH, "no request to check the qsh against")
	}
	canonical := CanonicalRequest(r.Method, RequestPath(r), r.URL.RawQuery, basePath)
	if subtle.ConstantTimeCompare([]byte(got), []byte(QSH(canonical))) != 1 {
		return verifiedReject(ReasonQSH, "qsh was not computed for this request (canonical request %q)", canonical)
	}
	return nil
}

func audienceMatches(got, want []string) bool {
	for _, g := range got {
		g = strings.TrimRight(g, "/")
		for _, w := range want {
			if g != "" && g == strings.TrimRight(w, "/") {
				return true
			}
		}
	}
	return false
}

func formatTime(d *jwt.NumericDate) string {
	if d == nil {
		return "(none)"
	}
	return d.UTC().Format(time.RFC3339)
}

// quoteShort quotes attacker-controlled text for an error message, bounded so a
// huge claim cannot flood the logs.
func quoteShort(s string) string {
	const limit = 80
	if len(s) > limit {
		return fmt.Sprintf("%q…", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}
