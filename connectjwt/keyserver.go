package connectjwt

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultKeyServerURL is Atlassian's production signed-install key server.
const DefaultKeyServerURL = "https://connect-install-keys.atlassian.com"

// Defaults for KeyServer's zero fields.
const (
	DefaultKeyTTL      = 24 * time.Hour
	DefaultKeyTimeout  = 5 * time.Second
	DefaultKeyMaxBytes = 64 << 10
	DefaultKeyMissTTL  = time.Minute
	// A key server is asked for a new kid only when a key rotates; five a
	// second, ten at once, is far above that and far below a flood.
	DefaultKeyFetchesPerSecond = 5
	DefaultKeyFetchBurst       = 10
)

// maxRememberedMisses bounds the misses kept between sweeps; the fetch bound
// already keeps them near FetchesPerSecond × MissTTL.
const maxRememberedMisses = 4096

// errKeyNotFound marks an answer that says the kid does not exist, the one
// failure worth remembering; a failing key server is asked again next time.
var errKeyNotFound = errors.New("no such key")

// ErrKeyFetchLimited is returned, without asking the key server, when the
// fetch budget is spent.
var ErrKeyFetchLimited = errors.New("key server fetches are rate limited; try again shortly")

// minRSABits refuses keys too weak to trust for install, which carries the
// tenant's shared secret.
const minRSABits = 2048

// ValidKeyID reports whether kid is safe to put in a key server URL: 1 to 128
// characters from A-Z a-z 0-9 . _ -, and no "..".
func ValidKeyID(kid string) bool {
	if kid == "" || len(kid) > 128 || strings.Contains(kid, "..") {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// KeyServer fetches signed-install public keys as PEM from <BaseURL>/<kid> and
// caches them for TTL; a kid the server does not know is remembered for
// MissTTL; other failures are not cached. Concurrent requests for one kid
// share one fetch, and fetches are bounded per second. The zero value fetches
// from DefaultKeyServerURL with the defaults.
type KeyServer struct {
	BaseURL  string           // "" means DefaultKeyServerURL
	Client   *http.Client     // nil means http.DefaultClient
	Timeout  time.Duration    // bound on one fetch; 0 means DefaultKeyTimeout
	MaxBytes int64            // bound on the response body; 0 means DefaultKeyMaxBytes
	TTL      time.Duration    // how long a key is cached; 0 means DefaultKeyTTL
	Now      func() time.Time // nil means time.Now
	// MissTTL is how long a kid the server does not know (404, 410) is
	// remembered as unknown; 0 means DefaultKeyMissTTL.
	MissTTL time.Duration
	// FetchesPerSecond and FetchBurst bound fetches from the key server, a
	// token bucket over every kid: the kid is the caller's choice, so without
	// a bound any caller could make realmhook flood the key server. 0 means
	// DefaultKeyFetchesPerSecond and DefaultKeyFetchBurst.
	FetchesPerSecond float64
	FetchBurst       int

	mu       sync.Mutex
	cache    map[string]cachedKey
	misses   map[string]time.Time // kid → when the server said it does not exist
	inflight map[string]*keyFetch
	limiter  *rate.Limiter
}

type cachedKey struct {
	key       *rsa.PublicKey
	fetchedAt time.Time
}

// keyFetch is one fetch in flight that several callers may wait on.
type keyFetch struct {
	done    chan struct{}
	key     *rsa.PublicKey
	err     error
	waiters int // callers that joined after the first
}

// PublicKey returns the RSA public key named kid, from the cache or the server.
func (k *KeyServer) PublicKey(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if !ValidKeyID(kid) {
		return nil, fmt.Errorf("key id %s: not a valid kid", quoteShort(kid))
	}
	now := k.now()

	k.mu.Lock()
	if c, ok := k.cache[kid]; ok && now.Sub(c.fetchedAt) < k.ttl() {
		k.mu.Unlock()
		return c.key, nil
	}
	if at, ok := k.misses[kid]; ok && now.Sub(at) < k.missTTL() {
		k.mu.Unlock()
		return nil, fmt.Errorf("key %s: %w (the key server said so %s ago)", kid, errKeyNotFound, now.Sub(at).Round(time.Second))
	}
	f, ok := k.inflight[kid]
	if ok {
		f.waiters++
	} else {
		if k.limiter == nil {
			k.limiter = rate.NewLimiter(rate.Limit(k.fetchesPerSecond()), k.fetchBurst())
		}
		// AllowN with the injected clock, so tests count instead of timing;
		// a caller over the budget is refused at once rather than queued.
		if !k.limiter.AllowN(now, 1) {
			k.mu.Unlock()
			return nil, fmt.Errorf("key %s: %w", kid, ErrKeyFetchLimited)
		}
		f = &keyFetch{done: make(chan struct{})}
		if k.inflight == nil {
			k.inflight = make(map[string]*keyFetch)
		}
		k.inflight[kid] = f
		// The fetch outlives the caller that started it, because others may
		// be waiting on it; it is bounded by Timeout instead.
		go k.run(context.WithoutCancel(ctx), kid, f)
	}
	k.mu.Unlock()

	select {
	case <-f.done:
		return f.key, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("key %s: %w", kid, ctx.Err())
	}
}

func (k *KeyServer) run(ctx context.Context, kid string, f *keyFetch) {
	f.key, f.err = k.fetch(ctx, kid)
	k.mu.Lock()
	delete(k.inflight, kid)
	switch {
	case f.err == nil:
		if k.cache == nil {
			k.cache = make(map[string]cachedKey)
		}
		k.cache[kid] = cachedKey{key: f.key, fetchedAt: k.now()}
		delete(k.misses, kid)
	case errors.Is(f.err, errKeyNotFound):
		k.rememberMiss(kid, k.now())
	}
	k.mu.Unlock()
	close(f.done)
}

func (k *KeyServer) fetch(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout())
	defer cancel()

	url := strings.TrimRight(k.baseURL(), "/") + "/" + kid
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("key %s: build request: %w", kid, err)
	}
	resp, err := k.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("key %s: fetch: %w", kid, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusGone:
		return nil, fmt.Errorf("key %s: key server answered %s: %w", kid, resp.Status, errKeyNotFound)
	default:
		return nil, fmt.Errorf("key %s: key server answered %s", kid, resp.Status)
	}
	limit := k.maxBytes()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("key %s: read body: %w", kid, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("key %s: key server sent more than %d bytes", kid, limit)
	}
	key, err := ParsePublicKeyPEM(body)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", kid, err)
	}
	return key, nil
}

// rememberMiss records that kid does not exist; k.mu is held. Expired
// misses are swept when the map grows past its bound, and if every one is
// still fresh, arbitrary ones go until half remain, so memory stays bounded.
func (k *KeyServer) rememberMiss(kid string, now time.Time) {
	if k.misses == nil {
		k.misses = make(map[string]time.Time)
	}
	if len(k.misses) >= maxRememberedMisses {
		for id, at := range k.misses {
			if now.Sub(at) >= k.missTTL() {
				delete(k.misses, id)
			}
		}
		for id := range k.misses {
			if len(k.misses) < maxRememberedMisses/2 {
				break
			}
			delete(k.misses, id)
		}
	}
	k.misses[kid] = now
}

// ParsePublicKeyPEM parses the first PEM block of data as an RSA public key of
// at least 2048 bits, PKIX ("PUBLIC KEY") or PKCS #1 ("RSA PUBLIC KEY").
func ParsePublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not a PEM public key")
	}
	var key *rsa.PublicKey
	switch block.Type {
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKIX public key: %w", err)
		}
		rsaPub, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key is %T, want RSA", pub)
		}
		key = rsaPub
	case "RSA PUBLIC KEY":
		rsaPub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS #1 public key: %w", err)
		}
		key = rsaPub
	default:
		return nil, fmt.Errorf("PEM block is %q, want PUBLIC KEY", block.Type)
	}
	if key.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA key has %d bits, want at least %d", key.N.BitLen(), minRSABits)
	}
	return key, nil
}

// EncodePublicKeyPEM PEM-encodes pub as a PKIX "PUBLIC KEY", the form a key
// server serves.
func EncodePublicKeyPEM(pub *rsa.PublicKey) ([]byte, error) {
	if pub == nil {
		return nil, errors.New("encode public key: key is nil")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

func (k *KeyServer) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

func (k *KeyServer) baseURL() string {
	if k.BaseURL == "" {
		return DefaultKeyServerURL
	}
	return k.BaseURL
}

func (k *KeyServer) client() *http.Client {
	if k.Client == nil {
		return http.DefaultClient
	}
	return k.Client
}

func (k *KeyServer) timeout() time.Duration { return orDefault(k.Timeout, DefaultKeyTimeout) }
func (k *KeyServer) maxBytes() int64        { return orDefault(k.MaxBytes, DefaultKeyMaxBytes) }
func (k *KeyServer) missTTL() time.Duration { return orDefault(k.MissTTL, DefaultKeyMissTTL) }
func (k *KeyServer) ttl() time.Duration     { return orDefault(k.TTL, DefaultKeyTTL) }
func (k *KeyServer) fetchBurst() int        { return orDefault(k.FetchBurst, DefaultKeyFetchBurst) }
func (k *KeyServer) fetchesPerSecond() float64 {
	return orDefault(k.FetchesPerSecond, DefaultKeyFetchesPerSecond)
}

// orDefault is v, or def where v is left zero (or set negative): every
// KeyServer field reads "zero means the default".
func orDefault[T int | int64 | float64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// waiters reports how many callers joined the fetch of kid after the first;
// tests use it to know every caller is waiting on the same fetch.
func (k *KeyServer) waiters(kid string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f, ok := k.inflight[kid]; ok {
		return f.waiters
	}
	return -1
}
