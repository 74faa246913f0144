// Package hostsim stands in for the Atlassian host product and its data
// residency migration service, so any Connect app can be installed, called,
// migrated and checked for conformance locally.
package hostsim

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/forgefit"
)

// Defaults of a Host from New or Open.
const (
	// DefaultRetryDelay and DefaultRetries mirror the host: a hook answered
	// non-2xx without an errorResponseCode is retried twice, 5 s apart.
	DefaultRetryDelay = 5 * time.Second
	DefaultRetries    = 2
	// DefaultHTTPTimeout bounds each call the host makes.
	DefaultHTTPTimeout = 30 * time.Second
	// maxResponseBytes bounds what is read of an app's answer.
	maxResponseBytes = 1 << 20
)

// Host is a simulated host product: it holds the signed-install key, the
// tenants it installed (optionally persisted in a state file) and signs every
// call it makes to an app the way the host does.
//
// Fields may be changed before the first call; a Host is safe for concurrent use
// afterwards.
type Host struct {
	Client *http.Client      // nil means a client with DefaultHTTPTimeout
	Signer connectjwt.Signer // Signer.Now nil means Host.Now
	Now    func() time.Time  // nil means time.Now
	// Sleep waits between status polls and retries; nil waits on a timer.
	// Tests replace it to move a fake clock instead of sleeping.
	Sleep      func(ctx context.Context, d time.Duration) error
	Out        io.Writer    // progress for people; nil means io.Discard
	Logger     *slog.Logger // nil means slog.Default()
	RetryDelay time.Duration
	Retries    int
	// KeysURL is the key server the app fetches signed-install keys from; ""
	// means the one recorded in the state file by `realmctl host keys`.
	KeysURL string

	mu    sync.Mutex
	path  string // "" keeps state in memory only
	st    *state
	keys  *KeyPair
	forge *forgefit.Signer
	descs map[string]*Descriptor
}

// New returns a Host whose state lives in memory only.
func New() *Host {
	return &Host{
		RetryDelay: DefaultRetryDelay,
		Retries:    DefaultRetries,
		st:         &state{},
	}
}

// Open returns a Host that keeps its state in the JSON file at path, creating it
// on the first save. The file holds secrets and is written 0600.
func Open(path string) (*Host, error) {
	if path == "" {
		return nil, realmhook.Errorf(realmhook.EINVALID, "state file path is empty")
	}
	st, err := loadState(path)
	if err != nil {
		return nil, err
	}
	h := New()
	h.path, h.st = path, st
	return h, nil
}

// Keys returns the host's signed-install key pair, loading it from the state or
// generating (and saving) one on first use.
func (h *Host) Keys() (KeyPair, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.keysLocked()
}

func (h *Host) keysLocked() (KeyPair, error) {
	if h.keys != nil {
		return *h.keys, nil
	}
	if h.st.PrivateKeyPEM != "" {
		k, err := decodePrivateKey(h.st.PrivateKeyPEM)
		if err != nil {
			return KeyPair{}, err
		}
		kp, err := NewKeyPair(k)
		if err != nil {
			return KeyPair{}, err
		}
		h.keys = &kp
		return kp, nil
	}
	kp, err := GenerateKeyPair()
	if err != nil {
		return KeyPair{}, err
	}
	if err := h.setKeysLocked(kp); err != nil {
		return KeyPair{}, err
	}
	return kp, nil
}

// SetKeys makes kp the host's signed-install key and saves it to the state.
func (h *Host) SetKeys(kp KeyPair) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.setKeysLocked(kp)
}

func (h *Host) setKeysLocked(kp KeyPair) error {
	if kp.Private == nil || kp.ID == "" {
		return realmhook.Errorf(realmhook.EINVALID, "key pair needs a private key and a kid")
	}
	p, err := encodePrivateKey(kp.Private)
	if err != nil {
		return err
	}
	h.keys = &kp
	h.st.PrivateKeyPEM, h.st.KeyID = p, kp.ID
	return h.saveLocked()
}

// SetKeysURL records where the key server runs, for later commands.
func (h *Host) SetKeysURL(u string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.st.KeysURL = u
	return h.saveLocked()
}

// keysURL is the key server to check before a signed install.
func (h *Host) keysURL() string {
	if h.KeysURL != "" {
		return h.KeysURL
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st.KeysURL
}

// KeyServer serves the host's public key as PEM at GET /<kid>, like Atlassian's
// connect-install-keys service; other kids are 404.
func (h *Host) KeyServer() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kp, err := h.Keys()
		if err != nil {
			h.logger().Error("key server: no key", "err", err)
			http.Error(w, "no key", http.StatusInternalServerError)
			return
		}
		ks, err := NewKeyServer(kp)
		if err != nil {
			http.Error(w, "bad key", http.StatusInternalServerError)
			return
		}
		ks.ServeHTTP(w, r)
	})
}

// Tenant returns the tenant with clientKey.
func (h *Host) Tenant(clientKey string) (Tenant, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.st.Tenants[clientKey]
	if !ok {
		return Tenant{}, false
	}
	return *t, true
}

// Tenants returns every tenant the host knows, by clientKey.
func (h *Host) Tenants() []Tenant {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st.sortedTenants()
}

func (h *Host) mustTenant(clientKey string) (Tenant, error) {
	if clientKey == "" {
		return Tenant{}, realmhook.Errorf(realmhook.EINVALID, "client key is empty")
	}
	t, ok := h.Tenant(clientKey)
	if !ok {
		return Tenant{}, realmhook.Errorf(realmhook.ENOTFOUND, "no tenant %q in the host's state (install it first)", clientKey)
	}
	return t, nil
}

// RecordTenant records t as a tenant the host installed, without calling an
// app: for a test or a tool that installed the app some other way.
func (h *Host) RecordTenant(t Tenant) error {
	if t.ClientKey == "" {
		return realmhook.Errorf(realmhook.EINVALID, "client key is empty")
	}
	return h.putTenant(t)
}

func (h *Host) putTenant(t Tenant) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st.Tenants == nil {
		h.st.Tenants = make(map[string]*Tenant)
	}
	h.st.Tenants[t.ClientKey] = &t
	return h.saveLocked()
}

func (h *Host) saveLocked() error {
	if h.path == "" {
		return nil
	}
	return h.st.save(h.path)
}

func (h *Host) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return defaultClient
}

var defaultClient = &http.Client{Timeout: DefaultHTTPTimeout}

func (h *Host) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Host) signer() connectjwt.Signer {
	s := h.Signer
	if s.Now == nil {
		s.Now = h.now
	}
	return s
}

func (h *Host) sleep(ctx context.Context, d time.Duration) error {
	if h.Sleep != nil {
		return h.Sleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Host) out() io.Writer {
	if h.Out != nil {
		return h.Out
	}
	return io.Discard
}

func (h *Host) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}
