package forgefit

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Signer mints FITs as Atlassian would, for the host emulator and tests: an
// RSA key published under KID in the JWKS it serves.
type Signer struct {
	Key *rsa.PrivateKey
	KID string
}

// NewSigner returns a signer with a fresh 2048-bit key.
func NewSigner(kid string) (*Signer, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("forge signer: %w", err)
	}
	return &Signer{Key: k, KID: kid}, nil
}

// Keys returns the signer's public key as a key set held in memory.
func (s *Signer) Keys() (*jwkset.MemoryJWKSet, error) {
	jwk, err := jwkset.NewJWKFromKey(&s.Key.PublicKey, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{KID: s.KID, ALG: jwkset.AlgRS256, USE: jwkset.UseSig},
	})
	if err != nil {
		return nil, fmt.Errorf("forge jwks: %w", err)
	}
	st := jwkset.NewMemoryStorage()
	if err := st.KeyWrite(context.Background(), jwk); err != nil {
		return nil, fmt.Errorf("forge jwks: %w", err)
	}
	return st, nil
}

// JWKS is the JSON Web Key Set that verifies the signer's tokens: its
// public key, declared RS256, for signatures.
func (s *Signer) JWKS() ([]byte, error) {
	st, err := s.Keys()
	if err != nil {
		return nil, err
	}
	raw, err := st.JSONPublic(context.Background())
	if err != nil {
		return nil, fmt.Errorf("forge jwks: %w", err)
	}
	return json.RawMessage(raw), nil
}

// Invocation describes one FIT to mint.
type Invocation struct {
	AppARI         string
	InstallationID string // bare or ARI; minted as the ARI
	CloudID        string // "" for a call without a site context
	Principal      string
	ModuleKey      string
	Environment    string // environment id; "" omits it
	// IssuedAt is the token's iat and nbf (zero: now); it expires TTL later
	// (zero: 25 s, as Forge's own tokens do).
	IssuedAt time.Time
	TTL      time.Duration
}

// Claims returns the claims Mint would sign for inv.
func (inv Invocation) Claims() *Claims {
	iat := inv.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	ttl := inv.TTL
	if ttl == 0 {
		ttl = 25 * time.Second
	}
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Audience:  jwt.ClaimStrings{inv.AppARI},
			IssuedAt:  jwt.NewNumericDate(iat),
			NotBefore: jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(iat.Add(ttl)),
			ID:        rand.Text(),
		},
		App:       App{ID: inv.AppARI, InstallationID: InstallationARIPrefix + InstallationID(inv.InstallationID)},
		Principal: inv.Principal,
	}
	if inv.ModuleKey != "" {
		c.App.Module = &Module{Key: inv.ModuleKey, Type: "core:endpoint"}
	}
	if inv.Environment != "" {
		c.App.Environment = &Environment{Type: "DEVELOPMENT", ID: inv.Environment}
	}
	if inv.CloudID != "" {
		c.Context = &Context{CloudID: inv.CloudID}
		c.App.APIBaseURL = "https://api.atlassian.com/ex/jira/" + inv.CloudID
	}
	return c
}

// Mint signs inv's claims.
func (s *Signer) Mint(inv Invocation) (string, error) {
	return s.Sign(inv.Claims())
}

// Sign signs any claims RS256 under the signer's kid (tests forge variants
// with it).
func (s *Signer) Sign(claims jwt.Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = s.KID
	out, err := t.SignedString(s.Key)
	if err != nil {
		return "", fmt.Errorf("forge fit: %w", err)
	}
	return out, nil
}
