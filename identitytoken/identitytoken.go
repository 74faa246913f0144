// Package identitytoken mints and verifies X-Realmhook-Identity, the token
// realmhook's gateway gives an app behind it to say who is calling: signed
// with gateway.identitySecret, which only realmhook and the app hold, so the
// app trusts this token and nothing else a client could send.
package identitytoken

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// Header carries the token on every request realmhook forwards to an
	// app, and on every lifecycle event it delivers.
	Header = "X-Realmhook-Identity"
	// Issuer is the iss of every token realmhook mints.
	Issuer = "realmhook"
	// TTL is how long a minted token is valid: one request's worth.
	TTL = 60 * time.Second
	// MinSecretBytes is the shortest identitySecret accepted: HS256 is only
	// as strong as its key, and 32 bytes is its output size (RFC 7518 3.2).
	MinSecretBytes = 32
)

// Key is gateway.identitySecret, checked for length.
type Key []byte

// NewKey returns secret as a Key, refusing one shorter than MinSecretBytes.
func NewKey(secret string) (Key, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("identity secret is %d bytes, want at least %d", len(secret), MinSecretBytes)
	}
	return Key(secret), nil
}

// Identity is what a token tells the app.
type Identity struct {
	// ClientKey is the tenant's (the token's sub).
	ClientKey string
	// Realm is the key of the realm serving the tenant in this process.
	Realm string
	// User is the host token's sub (the user's account id), when present.
	User string
	// Context is the host token's context claim as sent, when present.
	Context json.RawMessage
	// Frozen: a migration holds the tenant's writes.
	Frozen bool
	// Protocol is how the host called: ProtocolConnect or ProtocolForge.
	Protocol string
	// InstallationID, CloudID and Principal are a Forge call's
	// (app.installationId, context.cloudId, principal), when present.
	InstallationID string
	CloudID        string
	Principal      string
}

// The protocols a token names.
const (
	ProtocolConnect = "connect"
	ProtocolForge   = "forge"
)

// Claims is the token's claim set, as Verify returns it.
type Claims struct {
	Realm   string          `json:"realm"`
	User    string          `json:"user,omitempty"`
	Context json.RawMessage `json:"context,omitempty"`
	Frozen  bool            `json:"frozen"`
	// Protocol is "connect" or "forge"; the Forge fields are empty for
	// Connect.
	Protocol       string `json:"protocol,omitempty"`
	InstallationID string `json:"installationId,omitempty"`
	CloudID        string `json:"cloudId,omitempty"`
	Principal      string `json:"principal,omitempty"`
	jwt.RegisteredClaims
}

// ClientKey is the tenant's clientKey (sub).
func (c *Claims) ClientKey() string { return c.Subject }

// Mint signs id as a token issued at now and valid for TTL.
func (k Key) Mint(id Identity, now time.Time) (string, error) {
	if len(k) < MinSecretBytes {
		return "", errors.New("identitytoken: Mint with a key shorter than MinSecretBytes")
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	now = now.Truncate(time.Second)
	c := Claims{
		Realm:    id.Realm,
		User:     id.User,
		Context:  id.Context,
		Frozen:   id.Frozen,
		Protocol: id.Protocol, InstallationID: id.InstallationID, CloudID: id.CloudID, Principal: id.Principal,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   id.ClientKey,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(TTL)),
			ID:        hex.EncodeToString(jti[:]),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(k))
	if err != nil {
		return "", fmt.Errorf("identitytoken: sign: %w", err)
	}
	return s, nil
}

// Verify is for an app written in Go: it checks a token from the Header
// against the shared identitySecret and returns its claims. It requires
// HS256, iss "realmhook", a sub, iat, and exp not passed at now (leeway
// allowed either way) at most TTL after iat; a token with an audience (an egress token,
// "realmhook-egress") is refused so that one kind cannot pass for the other.
func Verify(token string, secret []byte, now time.Time, leeway time.Duration) (*Claims, error) {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	var c Claims
	if _, err := p.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return secret, nil }); err != nil {
		return nil, fmt.Errorf("identitytoken: %w", err)
	}
	if c.Subject == "" {
		return nil, errors.New("identitytoken: no sub")
	}
	if c.IssuedAt == nil {
		return nil, errors.New("identitytoken: no iat")
	}
	if c.ExpiresAt.Sub(c.IssuedAt.Time) > TTL {
		return nil, fmt.Errorf("identitytoken: valid for longer than %s", TTL)
	}
	if len(c.Audience) > 0 {
		return nil, errors.New("identitytoken: token has an audience; not an identity token")
	}
	return &c, nil
}
