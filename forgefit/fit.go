package forgefit

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmhook/realmhook/connectjwt"
)

// Claims are a FIT's claims. Registered claims as RFC 7519 has them; the
// rest as Atlassian's "Forge remote essentials" describes the token.
type Claims struct {
	jwt.RegisteredClaims
	App       App      `json:"app"`
	Context   *Context `json:"context,omitempty"`
	Principal string   `json:"principal,omitempty"`
}

// App is the FIT's app claim.
type App struct {
	// ID is the app's ARI (the aud).
	ID string `json:"id"`
	// InstallationID is the installation's ARI; it changes on re-install.
	InstallationID string       `json:"installationId"`
	APIBaseURL     string       `json:"apiBaseUrl,omitempty"`
	Environment    *Environment `json:"environment,omitempty"`
	Module         *Module      `json:"module,omitempty"`
}

// Environment is the app environment the call comes from.
type Environment struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
}

// Module is the manifest module that made the call.
type Module struct {
	Key  string `json:"key,omitempty"`
	Type string `json:"type,omitempty"`
}

// Context is the FIT's context claim: where the call was made; absent for
// calls that are not about one site.
type Context struct {
	CloudID string `json:"cloudId,omitempty"`
	SiteURL string `json:"siteUrl,omitempty"`
}

// CloudID returns the context's cloud id, "" when the FIT has none.
func (c *Claims) CloudID() string {
	if c.Context == nil {
		return ""
	}
	return c.Context.CloudID
}

// ReasonWrongApp labels a FIT whose app.id is not its aud.
const ReasonWrongApp = "wrong_app"

// maxTokenBytes bounds a FIT before anything in it is decoded.
const maxTokenBytes = 32 << 10

var kidPattern = regexp.MustCompile(`^[A-Za-z0-9._:/+=-]{1,256}$`)

// IsBearer reports whether the request carries "Authorization: Bearer …",
// the way Forge sends a FIT (Connect sends "JWT …").
func IsBearer(r *http.Request) bool {
	for _, h := range r.Header.Values("Authorization") {
		if scheme, _, ok := strings.Cut(strings.TrimSpace(h), " "); ok && strings.EqualFold(scheme, "Bearer") {
			return true
		}
	}
	return false
}

// TokenFromRequest returns the FIT of "Authorization: Bearer <token>". A
// request with more than one token, of any kind, is refused: which one
// would be verified is ambiguous.
func TokenFromRequest(r *http.Request) (string, error) {
	var found []string
	for _, h := range r.Header.Values("Authorization") {
		if _, token, ok := strings.Cut(strings.TrimSpace(h), " "); ok {
			found = append(found, strings.TrimSpace(token))
		}
	}
	if r.URL != nil {
		found = append(found, r.URL.Query()["jwt"]...)
	}
	switch {
	case len(found) == 0:
		return "", reject(connectjwt.ReasonMissing, `no "Authorization: Bearer" header`)
	case len(found) > 1:
		return "", reject(connectjwt.ReasonTwoPlaces, "%d tokens in the request; send exactly one", len(found))
	case found[0] == "":
		return "", reject(connectjwt.ReasonMalformed, "the token is empty")
	}
	return found[0], nil
}

// Verifier checks FITs for one app.
type Verifier struct {
	// AppARI is the app's ARI (AppARI), the aud every FIT must carry.
	AppARI string
	Keys   Keys
	// Leeway is the clock skew allowed on exp, iat and nbf.
	Leeway time.Duration
	Now    func() time.Time // nil: time.Now
}

// Verify checks a FIT: RS256 only, whatever the header says, and only when
// the key its kid names declares RS256 (or no algorithm) and is an RSA key;
// iss Issuer, aud the app's ARI, app.id the same ARI, exp required, exp,
// iat and nbf within Leeway, app.installationId present. Every refusal is a
// *connectjwt.RejectError that is never Verified: a FIT signed by Atlassian
// for another app or at another time proves nothing about this call, so
// each reads, to the caller, like every other token that failed.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > maxTokenBytes {
		return nil, reject(connectjwt.ReasonMalformed, "token is %d bytes, more than the %d allowed", len(token), maxTokenBytes)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	var keyErr *connectjwt.RejectError
	keyfunc := func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if !kidPattern.MatchString(kid) {
			keyErr = reject(connectjwt.ReasonKeyID, "kid is missing or not a key id")
			return nil, keyErr
		}
		k, err := v.Keys.KeyRead(ctx, kid)
		if err != nil {
			keyErr = &connectjwt.RejectError{Reason: connectjwt.ReasonKeyID, Detail: "no key with this kid in the JWKS", Err: err}
			return nil, keyErr
		}
		if declared := k.Marshal().ALG.String(); declared != "" && declared != t.Method.Alg() {
			keyErr = reject(connectjwt.ReasonAlgorithm, "the key declares %s, the token says %s", declared, t.Method.Alg())
			return nil, keyErr
		}
		pub, ok := k.Key().(*rsa.PublicKey)
		if !ok {
			keyErr = reject(connectjwt.ReasonAlgorithm, "the key is not an RSA public key")
			return nil, keyErr
		}
		return pub, nil
	}
	var c Claims
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(v.AppARI),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.Leeway),
		jwt.WithTimeFunc(now),
	).ParseWithClaims(token, &c, keyfunc)
	if err != nil {
		if keyErr != nil {
			return nil, keyErr
		}
		return nil, rejectParse(err)
	}
	if c.App.ID != v.AppARI {
		return nil, reject(ReasonWrongApp, "app.id is not the app this remote serves")
	}
	if InstallationID(c.App.InstallationID) == "" {
		return nil, reject(connectjwt.ReasonMalformed, "app.installationId is missing")
	}
	return &c, nil
}

// rejectParse maps the JWT library's errors to the rejection reasons.
func rejectParse(err error) *connectjwt.RejectError {
	reason := connectjwt.ReasonMalformed
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		reason = connectjwt.ReasonSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		reason = connectjwt.ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason = connectjwt.ReasonNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		reason = connectjwt.ReasonIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		reason = connectjwt.ReasonAudience
	}
	return &connectjwt.RejectError{Reason: reason, Detail: "forge invocation token: " + reason, Err: err}
}

func reject(reason, format string, args ...any) *connectjwt.RejectError {
	return &connectjwt.RejectError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}
