package connectjwt

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultTokenTTL is how long a token from Signer lives unless TTL says
// otherwise; the host uses about as long.
const DefaultTokenTTL = 3 * time.Minute

// Signer mints Connect tokens the way the host does, for realmctl's host
// emulator and for tests. Each token has iat = now and exp = now + TTL.
type Signer struct {
	Now func() time.Time // nil means time.Now
	TTL time.Duration    // 0 means DefaultTokenTTL
}

// HS256 signs a token for a method call to rawURL (the full URL, query
// included) made to the app's base URL baseURL; the qsh is computed relative to
// baseURL's path.
func (s Signer) HS256(secret []byte, issuer, method, rawURL, baseURL string) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("sign HS256: shared secret is empty")
	}
	qsh, err := urlQSH(method, rawURL, baseURL)
	if err != nil {
		return "", fmt.Errorf("sign HS256: %w", err)
	}
	return s.sign(jwt.SigningMethodHS256, secret, "", s.claims(issuer, "", qsh))
}

// HS256Context signs a frontend-style token whose qsh is ContextQSH: valid for
// no particular request.
func (s Signer) HS256Context(secret []byte, issuer string) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("sign HS256: shared secret is empty")
	}
	return s.sign(jwt.SigningMethodHS256, secret, "", s.claims(issuer, "", ContextQSH))
}

// RS256 signs a signed-install token like the host's: kid in the header, aud
// the app's base URL the call goes to.
func (s Signer) RS256(key *rsa.PrivateKey, kid, issuer, audience, method, rawURL, baseURL string) (string, error) {
	if key == nil {
		return "", errors.New("sign RS256: private key is nil")
	}
	if !ValidKeyID(kid) {
		return "", fmt.Errorf("sign RS256: kid %s is not a valid key id", quoteShort(kid))
	}
	qsh, err := urlQSH(method, rawURL, baseURL)
	if err != nil {
		return "", fmt.Errorf("sign RS256: %w", err)
	}
	return s.sign(jwt.SigningMethodRS256, key, kid, s.claims(issuer, audience, qsh))
}

func (s Signer) claims(issuer, audience, qsh string) *connectClaims {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	c := &connectClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		QSH: qsh,
	}
	if audience != "" {
		c.Audience = jwt.ClaimStrings{audience}
	}
	return c
}

func (s Signer) sign(method jwt.SigningMethod, key any, kid string, c *connectClaims) (string, error) {
	t := jwt.NewWithClaims(method, c)
	if kid != "" {
		t.Header["kid"] = kid
	}
	signed, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", method.Alg(), err)
	}
	return signed, nil
}

func urlQSH(method, rawURL, baseURL string) (string, error) {
	if method == "" {
		return "", errors.New("method is empty")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("request URL: %w", err)
	}
	base, err := url.Parse(baseURL)
	if err != nil {
		return "", fmt.Errorf("base URL: %w", err)
	}
	return QSH(CanonicalRequest(method, u.EscapedPath(), u.RawQuery, base.EscapedPath())), nil
}
