package hostsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/connectjwt"
)

// KeyBits is the size of the signed-install key the host generates.
const KeyBits = 2048

// KeyPair is the host's signed-install key and its kid.
type KeyPair struct {
	ID      string
	Private *rsa.PrivateKey
}

// GenerateKeyPair makes an RSA key and names it by a hash of its public half,
// so the same key always gets the same kid.
func GenerateKeyPair() (KeyPair, error) {
	k, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate RSA key: %w", err)
	}
	return NewKeyPair(k)
}

// NewKeyPair wraps an existing key, naming it like GenerateKeyPair does.
func NewKeyPair(k *rsa.PrivateKey) (KeyPair, error) {
	if k == nil {
		return KeyPair{}, realmhook.Errorf(realmhook.EINVALID, "key pair: private key is nil")
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return KeyPair{}, fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return KeyPair{ID: "realmctl-" + hex.EncodeToString(sum[:8]), Private: k}, nil
}

func encodePrivateKey(k *rsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", fmt.Errorf("encode private key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

func decodePrivateKey(s string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "state file: privateKeyPem is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "state file: privateKeyPem: %v", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, realmhook.Errorf(realmhook.EINVALID, "state file: privateKeyPem is %T, want an RSA key", k)
	}
	return rk, nil
}

// keyServer serves public keys as PEM at GET /<kid>, like
// https://connect-install-keys.atlassian.com.
type keyServer struct {
	pems map[string][]byte
}

// NewKeyServer returns a handler serving the public halves of keys, each at
// GET /<kid>; any other path is 404.
func NewKeyServer(keys ...KeyPair) (http.Handler, error) {
	ks := &keyServer{pems: make(map[string][]byte, len(keys))}
	for _, k := range keys {
		p, err := connectjwt.EncodePublicKeyPEM(&k.Private.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("key server: %w", err)
		}
		ks.pems[k.ID] = p
	}
	return ks, nil
}

func (ks *keyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p, ok := ks.pems[strings.TrimPrefix(r.URL.Path, "/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(p)
}

// checkKeyServer makes sure keysURL serves this host's key, because an app
// refusing an install for a key it cannot fetch looks like an app bug.
func (h *Host) checkKeyServer(ctx context.Context, keysURL string, kp KeyPair) error {
	if keysURL == "" {
		return realmhook.Errorf(realmhook.EINVALID,
			"no key server: run `realmctl host keys` with the same --state first, or pass --keys-url")
	}
	want, err := connectjwt.EncodePublicKeyPEM(&kp.Private.PublicKey)
	if err != nil {
		return err
	}
	u := strings.TrimRight(keysURL, "/") + "/" + kp.ID
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return realmhook.Errorf(realmhook.EINVALID, "key server URL %q: %v", keysURL, err)
	}
	resp, err := h.client().Do(req)
	if err != nil {
		return fmt.Errorf("key server %s unreachable (is `realmctl host keys` running?): %w", keysURL, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("key server %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("key server %s answered %d for kid %s: it runs with another key (start `realmctl host keys` with the same --state)", keysURL, resp.StatusCode, kp.ID)
	}
	if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		return fmt.Errorf("key server %s serves a different key for kid %s", keysURL, kp.ID)
	}
	return nil
}
