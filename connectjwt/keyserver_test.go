package connectjwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// keyServerTimeout bounds each fetch in these tests; short so a hanging server
// costs little, long enough for a loaded machine to answer a local request.
const keyServerTimeout = 500 * time.Millisecond

// mustKeyServer starts a server that answers every request with handler and
// counts requests.
func mustKeyServer(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func mustPEM(t *testing.T) []byte {
	t.Helper()
	b, err := EncodePublicKeyPEM(&testKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func serveBody(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { w.Write(body) }
}

func TestKeyServer_PublicKey(t *testing.T) {
	goodPEM := mustPEM(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	smallDER, err := x509.MarshalPKIXPublicKey(&generateKey(1024).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&testKey().PublicKey)})

	tests := []struct {
		name     string
		handler  http.HandlerFunc
		maxBytes int64
		wantErr  string // "" means success
		hangs    bool
	}{
		{name: "PKIX", handler: serveBody(goodPEM)},
		{name: "PKCS1", handler: serveBody(pkcs1)},
		{name: "NotFound", handler: http.NotFound, wantErr: "404"},
		{name: "ServerError", handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, wantErr: "500"},
		{name: "Garbage", handler: serveBody([]byte("this is not a key")), wantErr: "not a PEM"},
		{name: "PEMButNotAKey", handler: serveBody(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")})), wantErr: "parse PKIX"},
		{name: "ECKey", handler: serveBody(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER})), wantErr: "want RSA"},
		{name: "SmallRSAKey", handler: serveBody(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: smallDER})), wantErr: "1024 bits"},
		{name: "Certificate", handler: serveBody(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")})), wantErr: "want PUBLIC KEY"},
		{name: "Oversize", handler: serveBody(append(goodPEM, strings.Repeat("\n", 1024)...)), maxBytes: int64(len(goodPEM)) + 100, wantErr: "more than"},
		{name: "ExactlyMaxBytes", handler: serveBody(goodPEM), maxBytes: int64(len(goodPEM))},
		{name: "Hanging", handler: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, wantErr: "deadline exceeded", hangs: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := mustKeyServer(t, tt.handler)
			ks := &KeyServer{BaseURL: srv.URL, Client: srv.Client(), Timeout: keyServerTimeout, MaxBytes: tt.maxBytes}

			start := time.Now()
			key, err := ks.PublicKey(context.Background(), "key-1")
			elapsed := time.Since(start)

			limit := keyServerTimeout
			if tt.hangs {
				// A hanging server is cut off at the timeout; allow the
				// machine a moment to notice.
				limit += time.Second
			}
			if elapsed > limit {
				t.Errorf("took %v, want at most %v", elapsed, limit)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("PublicKey: %v", err)
			}
			if !key.Equal(&testKey().PublicKey) {
				t.Error("returned key differs from the served one")
			}
		})
	}
}

func TestKeyServer_RequestPath(t *testing.T) {
	var gotPath atomic.Value
	srv, _ := mustKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotPath.Store(r.URL.Path)
		w.Write(mustPEM(t))
	})
	ks := &KeyServer{BaseURL: srv.URL + "/keys/", Client: srv.Client(), Timeout: keyServerTimeout}
	if _, err := ks.PublicKey(context.Background(), "abc.DEF_1-2"); err != nil {
		t.Fatal(err)
	}
	if got := gotPath.Load(); got != "/keys/abc.DEF_1-2" {
		t.Errorf("fetched %v, want /keys/abc.DEF_1-2", got)
	}
}

func TestKeyServer_InvalidKidMakesNoRequest(t *testing.T) {
	srv, requests := mustKeyServer(t, serveBody(mustPEM(t)))
	ks := &KeyServer{BaseURL: srv.URL, Client: srv.Client(), Timeout: keyServerTimeout}
	for _, kid := range []string{"", "../x", "a/b", "a..b", "a b", "a%2Fb", strings.Repeat("k", 129)} {
		t.Run(kid, func(t *testing.T) {
			if _, err := ks.PublicKey(context.Background(), kid); err == nil {
				t.Errorf("PublicKey(%q) succeeded, want an error", kid)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("made %d requests for invalid kids, want 0", n)
	}
}

func TestValidKeyID(t *testing.T) {
	tests := []struct {
		kid  string
		want bool
	}{
		{"install-key-1", true},
		{"a.b_c-D9", true},
		{strings.Repeat("k", 128), true},
		{strings.Repeat("k", 129), false},
		{"", false},
		{"..", false},
		{"../x", false},
		{"a/b", false},
		{"a..b", false},
		{"a\\b", false},
		{"a?b", false},
		{"é", false},
	}
	for _, tt := range tests {
		t.Run(tt.kid, func(t *testing.T) {
			if got := ValidKeyID(tt.kid); got != tt.want {
				t.Errorf("ValidKeyID(%q) = %v, want %v", tt.kid, got, tt.want)
			}
		})
	}
}

func TestKeyServer_Cache(t *testing.T) {
	var fail atomic.Bool
	body := mustPEM(t)
	srv, requests := mustKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Write(body)
	})
	var mu sync.Mutex
	now := testNow
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	ks := &KeyServer{BaseURL: srv.URL, Client: srv.Client(), Timeout: keyServerTimeout, TTL: time.Hour, Now: clock}
	ctx := context.Background()

	mustFetch := func(t *testing.T, wantRequests int32) {
		t.Helper()
		if _, err := ks.PublicKey(ctx, "k1"); err != nil {
			t.Fatalf("PublicKey: %v", err)
		}
		if n := requests.Load(); n != wantRequests {
			t.Fatalf("%d requests so far, want %d", n, wantRequests)
		}
	}

	t.Run("FirstFetch", func(t *testing.T) { mustFetch(t, 1) })
	t.Run("HitDoesNotRefetch", func(t *testing.T) {
		advance(59 * time.Minute)
		mustFetch(t, 1)
	})
	t.Run("ExpiredRefetches", func(t *testing.T) {
		advance(2 * time.Minute)
		mustFetch(t, 2)
	})
	t.Run("ErrorsAreNotCached", func(t *testing.T) {
		fail.Store(true)
		if _, err := ks.PublicKey(ctx, "k2"); err == nil {
			t.Fatal("PublicKey succeeded while the server fails")
		}
		fail.Store(false)
		if _, err := ks.PublicKey(ctx, "k2"); err != nil {
			t.Fatalf("PublicKey after recovery: %v", err)
		}
		if n := requests.Load(); n != 4 {
			t.Errorf("%d requests so far, want 4", n)
		}
	})
}

func TestKeyServer_ConcurrentFetchesCollapse(t *testing.T) {
	gate := make(chan struct{})
	body := mustPEM(t)
	srv, requests := mustKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-gate
		w.Write(body)
	})
	ks := &KeyServer{BaseURL: srv.URL, Client: srv.Client(), Timeout: 10 * time.Second}

	const callers = 8
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := ks.PublicKey(context.Background(), "k1")
			errs <- err
		}()
	}
	// Wait until every caller has joined the one fetch before letting it finish.
	deadline := time.Now().Add(5 * time.Second)
	for ks.waiters("k1") != callers-1 {
		if time.Now().After(deadline) {
			close(gate)
			t.Fatalf("only %d callers joined the fetch, want %d", ks.waiters("k1"), callers-1)
		}
		time.Sleep(time.Millisecond) // polling with a deadline, not waiting for state
	}
	close(gate)
	for range callers {
		if err := <-errs; err != nil {
			t.Errorf("PublicKey: %v", err)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests for one kid, want 1", n)
	}
}

func TestKeyServer_CallerCancelDoesNotWait(t *testing.T) {
	srv, _ := mustKeyServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ks := &KeyServer{BaseURL: srv.URL, Client: srv.Client(), Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := ks.PublicKey(ctx, "k1"); err == nil {
		t.Fatal("PublicKey succeeded against a hanging server")
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("returned after %v, want soon after the caller's 50ms deadline", elapsed)
	}
	srv.CloseClientConnections()
}

func TestVerifyInstall_ThroughKeyServer(t *testing.T) {
	srv, requests := mustKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/k1" {
			http.NotFound(w, r)
			return
		}
		w.Write(mustPEM(t))
	})
	ks := &KeyServer{BaseURL: srv.URL, Client: srv.Client(), Timeout: keyServerTimeout}
	const baseURL = "https://app.example.com"
	s := Signer{Now: fixedNow}
	v := Verifier{Now: fixedNow}

	for i := range 2 {
		tok, err := s.RS256(testKey(), "k1", "jira:1", baseURL, "POST", baseURL+"/installed", baseURL)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("POST", baseURL+"/installed", nil)
		if _, err := v.VerifyInstall(context.Background(), tok, ks, r, "", []string{baseURL}); err != nil {
			t.Fatalf("VerifyInstall #%d: %v", i+1, err)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d key fetches for two installs, want 1", n)
	}

	tok, err := s.RS256(testKey(), "k2", "jira:1", baseURL, "POST", baseURL+"/installed", baseURL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyInstall(context.Background(), tok, ks, httptest.NewRequest("POST", baseURL+"/installed", nil), "", []string{baseURL})
	mustReject(t, err, ReasonKeyFetch)
}

func TestEncodePublicKeyPEM(t *testing.T) {
	b, err := EncodePublicKeyPEM(&testKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParsePublicKeyPEM(b)
	if err != nil {
		t.Fatalf("parse what was encoded: %v", err)
	}
	if !key.Equal(&testKey().PublicKey) {
		t.Error("round trip changed the key")
	}
	if _, err := EncodePublicKeyPEM(nil); err == nil {
		t.Error("encoding a nil key succeeded")
	}
}

// Any unauthenticated caller picks the kid, so each new kid must not cost a
// key-server fetch: a kid the server does not know is remembered for MissTTL,
// and fetches are bounded per second (the clock is injected, so the bound is
// counted, not timed).
func TestKeyServer_UnknownKidsDoNotFloodTheServer(t *testing.T) {
	body := mustPEM(t)
	srv, requests := mustKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/known" {
			w.Write(body)
			return
		}
		http.NotFound(w, r)
	})
	var mu sync.Mutex
	now := testNow
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	ks := &KeyServer{BaseURL: srv.URL, Client: srv.Client(), Timeout: keyServerTimeout, Now: clock,
		MissTTL: time.Minute, FetchesPerSecond: 1, FetchBurst: 3}
	ctx := context.Background()

	t.Run("MissIsRemembered", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			if _, err := ks.PublicKey(ctx, "nope"); err == nil {
				t.Fatal("unknown kid gave a key")
			}
		}
		if n := requests.Load(); n != 1 {
			t.Fatalf("%d fetches for one unknown kid asked five times, want 1", n)
		}
	})
	t.Run("FetchesBounded", func(t *testing.T) {
		for i := 0; i < 50; i++ {
			if _, err := ks.PublicKey(ctx, fmt.Sprintf("kid-%d", i)); err == nil {
				t.Fatal("unknown kid gave a key")
			}
		}
		// The burst of 3 had one fetch spent on "nope".
		if n := requests.Load(); n != 3 {
			t.Fatalf("%d fetches for 50 new kids at one instant, want 3 (the burst)", n)
		}
	})
	t.Run("BudgetRefills", func(t *testing.T) {
		advance(2 * time.Second)
		if _, err := ks.PublicKey(ctx, "known"); err != nil {
			t.Fatalf("known kid after the budget refilled: %v", err)
		}
		if _, err := ks.PublicKey(ctx, "known"); err != nil {
			t.Fatalf("cached known kid: %v", err)
		}
		if n := requests.Load(); n != 4 {
			t.Fatalf("%d fetches, want 4", n)
		}
	})
	t.Run("MissExpires", func(t *testing.T) {
		advance(time.Minute)
		if _, err := ks.PublicKey(ctx, "nope"); err == nil {
			t.Fatal("unknown kid gave a key")
		}
		if n := requests.Load(); n != 5 {
			t.Fatalf("%d fetches, want 5 (the miss expired)", n)
		}
	})
}
