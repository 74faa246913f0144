// Package secrets seals tenants' shared secrets at rest with AES-256-GCM, so
// that a dump or a backup of a realm's database hands out no tenant's key.
//
// A sealed secret is stored as "rhsec1:<key id>:<base64 nonce+ciphertext>",
// where the key id is derived from the key, so the ring knows which of its
// keys opens it and which rows still need the newest key. The tenant's
// clientKey is the associated data: a ciphertext copied into another
// tenant's row does not open there.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/realmhook/realmhook"
)

// KeyBytes is the length of a key: AES-256.
const KeyBytes = 32

// prefix marks a sealed value; anything else is a plaintext secret stored
// before keys were configured, which Open passes through and Reseal seals.
const prefix = "rhsec1:"

// aadLabel binds a ciphertext to its use as well as to its tenant.
const aadLabel = "realmhook shared secret\x00"

// ParseKey reads a key as configured: standard base64 (padded or not) of
// exactly 32 random bytes, e.g. the output of `openssl rand -base64 32`.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("is empty (is its environment variable set?)")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("is not base64 (want base64 of %d random bytes, e.g. openssl rand -base64 32)", KeyBytes)
		}
	}
	if len(b) != KeyBytes {
		return nil, fmt.Errorf("is base64 of %d bytes; want %d (e.g. openssl rand -base64 32)", len(b), KeyBytes)
	}
	return b, nil
}

// Keyring seals with its first key and opens with any of them, so keys can
// be rotated: put the new key first, keep the old one until Reseal is done.
type Keyring struct {
	keys []ringKey
}

type ringKey struct {
	id   string
	aead cipher.AEAD
}

// NewKeyring returns a ring of keys (each KeyBytes long), the first one
// sealing. Two equal keys are an error.
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("no keys")
	}
	ring := &Keyring{}
	seen := map[string]int{}
	for i, k := range keys {
		if len(k) != KeyBytes {
			return nil, fmt.Errorf("key %d is %d bytes; want %d", i, len(k), KeyBytes)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		id := keyID(k)
		if j, dup := seen[id]; dup {
			return nil, fmt.Errorf("key %d is the same as key %d", i, j)
		}
		seen[id] = i
		ring.keys = append(ring.keys, ringKey{id: id, aead: aead})
	}
	return ring, nil
}

// keyID names a key without revealing it: a hash under a fixed label.
func keyID(k []byte) string {
	h := sha256.Sum256(append([]byte("realmhook key id\x00"), k...))
	return hex.EncodeToString(h[:6])
}

func aad(clientKey string) []byte { return []byte(aadLabel + clientKey) }

// Seal encrypts a tenant's secret with the ring's first key.
func (k *Keyring) Seal(clientKey, secret string) (string, error) {
	key := k.keys[0]
	nonce := make([]byte, key.aead.NonceSize(), key.aead.NonceSize()+len(secret)+key.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal secret: %w", err)
	}
	sealed := key.aead.Seal(nonce, nonce, []byte(secret), aad(clientKey))
	return prefix + key.id + ":" + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// Sealed reports whether a stored value is sealed (by any key).
func Sealed(stored string) bool { return strings.HasPrefix(stored, prefix) }

// Current reports whether a stored value is sealed with the ring's first key.
func (k *Keyring) Current(stored string) bool {
	return strings.HasPrefix(stored, prefix+k.keys[0].id+":")
}

// Open returns the secret a stored value holds: a sealed value opened with
// the ring key it names, for this tenant only; a plaintext value as is.
func (k *Keyring) Open(clientKey, stored string) (string, error) {
	if !Sealed(stored) {
		return stored, nil
	}
	id, body, ok := strings.Cut(strings.TrimPrefix(stored, prefix), ":")
	if !ok {
		return "", realmhook.Errorf(realmhook.EINTERNAL, "shared secret of tenant %q: malformed sealed value", clientKey)
	}
	for _, key := range k.keys {
		if key.id != id {
			continue
		}
		raw, err := base64.RawStdEncoding.DecodeString(body)
		if err != nil || len(raw) < key.aead.NonceSize() {
			return "", realmhook.Errorf(realmhook.EINTERNAL, "shared secret of tenant %q: malformed sealed value", clientKey)
		}
		n := key.aead.NonceSize()
		plain, err := key.aead.Open(nil, raw[:n], raw[n:], aad(clientKey))
		if err != nil {
			return "", realmhook.Errorf(realmhook.EINTERNAL, "shared secret of tenant %q does not open: sealed for another tenant, or altered", clientKey)
		}
		return string(plain), nil
	}
	return "", realmhook.Errorf(realmhook.EINTERNAL, "shared secret of tenant %q is sealed with key %s, which is not in secrets.keys", clientKey, id)
}
