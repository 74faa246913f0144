package hostsim_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/realmhook/realmhook/hostsim"
	"github.com/realmhook/realmhook/hostsim/fakeapp"
)

// RSA keys are slow to make under -race, so the tests share two.
var (
	keysOnce  sync.Once
	hostKey   hostsim.KeyPair
	forgedKey *rsa.PrivateKey
	keysErr   error
)

func mustKeys(t *testing.T) (hostsim.KeyPair, *rsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		if hostKey, keysErr = hostsim.GenerateKeyPair(); keysErr != nil {
			return
		}
		forgedKey, keysErr = rsa.GenerateKey(rand.Reader, 2048)
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return hostKey, forgedKey
}

// fakeClock is a clock that moves only when the code under test sleeps.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Tick is Now, moving the clock a millisecond first, so that everything the
// code under test times takes some time.
func (c *fakeClock) Tick() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

// syncBuffer is a bytes.Buffer safe for the host and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a host, its key server and a fake app trusting it, on one fake clock.
type env struct {
	host          *hostsim.Host
	app           *fakeapp.App
	clock         *fakeClock
	out           *syncBuffer
	descriptorURL string
	appURL        string
}

func mustEnv(t *testing.T, d fakeapp.Defects) *env {
	t.Helper()
	kp, _ := mustKeys(t)
	h := hostsim.New()
	if err := h.SetKeys(kp); err != nil {
		t.Fatal(err)
	}
	ks := httptest.NewServer(h.KeyServer())
	t.Cleanup(ks.Close)
	h.KeysURL = ks.URL

	clock := newFakeClock()
	app := fakeapp.New(ks.URL, d)
	app.Now = clock.Now
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)

	out := &syncBuffer{}
	h.Now, h.Sleep, h.Out = clock.Now, clock.Sleep, out
	return &env{host: h, app: app, clock: clock, out: out, descriptorURL: srv.URL + "/atlassian-connect.json", appURL: srv.URL}
}

func (e *env) mustInstall(t *testing.T, realm string) hostsim.Tenant {
	t.Helper()
	tn, err := e.host.Install(context.Background(), hostsim.InstallOptions{DescriptorURL: e.descriptorURL, Realm: realm})
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	return tn
}
