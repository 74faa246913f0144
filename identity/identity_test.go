package identity_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/identity"
	"github.com/realmhook/realmhook/realms"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/sqlite"
)

const base = "http://app.test"

type env struct {
	layer    *identity.Layer
	eu, us   *realms.Realm
	euPath   string
	rejected []string
	key      *rsa.PrivateKey
}

type oneKey struct{ pub *rsa.PublicKey }

func (k oneKey) PublicKey(context.Context, string) (*rsa.PublicKey, error) { return k.pub, nil }

func mustOpen(t *testing.T, path string) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{euPath: filepath.Join(dir, "eu.db")}
	var err error
	if e.eu, err = realms.NewRealm("EU", base+"/realms/eu", mustOpen(t, e.euPath)); err != nil {
		t.Fatal(err)
	}
	if e.us, err = realms.NewRealm("US", base+"/realms/us", mustOpen(t, filepath.Join(dir, "us.db"))); err != nil {
		t.Fatal(err)
	}
	reg, err := realms.NewRegistry(e.eu, e.us)
	if err != nil {
		t.Fatal(err)
	}
	if e.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	e.layer = identity.New(identity.Options{
		Realms: reg, InstallKeys: oneKey{&e.key.PublicKey},
		Rejected: func(reason string) { e.rejected = append(e.rejected, reason) },
		Log:      func(*http.Request) *slog.Logger { return slog.New(slog.DiscardHandler) },
	})
	return e
}

func mustPut(t *testing.T, r *realms.Realm, tn *realmhook.Tenant) {
	t.Helper()
	if err := r.Store.PutTenant(context.Background(), tn); err != nil {
		t.Fatal(err)
	}
}

// request is a call to realm's base URL signed with secret (context-qsh when
// frontend).
func request(t *testing.T, realm *realms.Realm, issuer, secret, method, path string, frontend bool) *http.Request {
	t.Helper()
	url := realm.BaseURL + path
	var tok string
	var err error
	if frontend {
		tok, err = connectjwt.Signer{}.HS256Context([]byte(secret), issuer)
	} else {
		tok, err = connectjwt.Signer{}.HS256([]byte(secret), issuer, method, url, realm.BaseURL)
	}
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(method, url, nil)
	r.Header.Set("Authorization", "JWT "+tok)
	return r
}

// body is what a refusal shows its caller.
func body(t *testing.T, err error) string {
	t.Helper()
	var e *realmhook.Error
	if !errors.As(err, &e) {
		t.Fatalf("%v is not a *realmhook.Error", err)
	}
	return fmt.Sprint(e.Code, e.Message, e.Fields)
}

func TestLayer_HS256(t *testing.T) {
	e := mustEnv(t)
	mustPut(t, e.eu, &realmhook.Tenant{ClientKey: "t-eu", SharedSecret: "s-eu", State: realmhook.TenantActive})
	mustPut(t, e.us, &realmhook.Tenant{ClientKey: "t-moved", SharedSecret: "s-m", State: realmhook.TenantActive})
	mustPut(t, e.eu, &realmhook.Tenant{ClientKey: "t-moved", SharedSecret: "s-m", State: realmhook.TenantMoved, MovedTo: "US"})
	pinned := identity.Policy{Kind: identity.ConnectHS256, Realm: identity.PinnedRealm}
	pinnedFrontend := identity.Policy{Kind: identity.ConnectHS256, Realm: identity.PinnedRealm, AllowContextQSH: true, Lookup: identity.Cached}
	anyRealm := identity.Policy{Kind: identity.ConnectHS256, Realm: identity.AnyRealm}

	tests := []struct {
		name     string
		req      *http.Request
		called   *realms.Realm
		policy   identity.Policy
		wantCode string // "" for success
		wantKind identity.Kind
		wantHome string
	}{
		{"Pinned", request(t, e.eu, "t-eu", "s-eu", "GET", "/x", false), e.eu, pinned, "", identity.ConnectHS256, "EU"},
		{"PinnedCached", request(t, e.eu, "t-eu", "s-eu", "GET", "/x", false), e.eu, pinnedFrontend, "", identity.ConnectHS256, "EU"},
		{"FrontendAllowed", request(t, e.eu, "t-eu", "s-eu", "GET", "/x", true), e.eu, pinnedFrontend, "", identity.ContextHS256, "EU"},
		{"FrontendRefused", request(t, e.eu, "t-eu", "s-eu", "GET", "/x", true), e.eu, pinned, realmhook.EUNAUTHORIZED, "", ""},
		{"WrongRealm", request(t, e.us, "t-eu", "s-eu", "GET", "/x", false), e.us, pinned, realmhook.EMISDIRECTED, "", ""},
		{"Moved", request(t, e.eu, "t-moved", "s-m", "GET", "/x", false), e.eu, pinned, realmhook.EMISDIRECTED, "", ""},
		{"AnyRealmResolvesHome", request(t, e.us, "t-eu", "s-eu", "GET", "/x", false), e.us, anyRealm, "", identity.ConnectHS256, "EU"},
		{"BadSignature", request(t, e.eu, "t-eu", "wrong", "GET", "/x", false), e.eu, pinnedFrontend, realmhook.EUNAUTHORIZED, "", ""},
		{"UnknownTenant", request(t, e.eu, "nobody", "s", "GET", "/x", false), e.eu, pinnedFrontend, realmhook.EUNAUTHORIZED, "", ""},
		{"QSHForAnotherPath", func() *http.Request {
			r := request(t, e.eu, "t-eu", "s-eu", "GET", "/x", false)
			r.URL.Path, r.RequestURI = "/realms/eu/y", "/realms/eu/y"
			return r
		}(), e.eu, pinned, realmhook.EUNAUTHORIZED, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := e.layer.Authenticate(tc.req, tc.called, tc.policy)
			if tc.wantCode != "" {
				if realmhook.ErrorCode(err) != tc.wantCode {
					t.Fatalf("err %v, want %s", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Kind != tc.wantKind || id.Home.Key != tc.wantHome || id.Tenant == nil || id.ClientKey != id.Tenant.ClientKey {
				t.Fatalf("identity %+v, want kind %s home %s", id, tc.wantKind, tc.wantHome)
			}
		})
	}

	t.Run("UnverifiedRefusalsReadAlike", func(t *testing.T) {
		_, bad := e.layer.Authenticate(request(t, e.eu, "t-eu", "wrong", "GET", "/x", false), e.eu, pinned)
		_, unknown := e.layer.Authenticate(request(t, e.eu, "nobody", "s", "GET", "/x", false), e.eu, pinned)
		if body(t, bad) != body(t, unknown) {
			t.Fatalf("a bad signature reads %s, an unknown tenant %s", body(t, bad), body(t, unknown))
		}
	})
}

// TestLayer_CachedReReadsOnSignatureFailure: another replica re-installs the
// tenant with a new secret; the cached record still has the old one, and the
// new token is accepted at once.
func TestLayer_CachedReReadsOnSignatureFailure(t *testing.T) {
	e := mustEnv(t)
	mustPut(t, e.eu, &realmhook.Tenant{ClientKey: "t1", SharedSecret: "old", State: realmhook.TenantActive})
	cached := identity.Policy{Kind: identity.ConnectHS256, Realm: identity.PinnedRealm, Lookup: identity.Cached}
	if _, err := e.layer.Authenticate(request(t, e.eu, "t1", "old", "GET", "/x", false), e.eu, cached); err != nil {
		t.Fatal(err)
	}
	other := mustOpen(t, e.euPath) // another replica's store on the same database
	if err := other.PutTenant(context.Background(), &realmhook.Tenant{ClientKey: "t1", SharedSecret: "new", State: realmhook.TenantActive}); err != nil {
		t.Fatal(err)
	}
	id, err := e.layer.Authenticate(request(t, e.eu, "t1", "new", "GET", "/x", false), e.eu, cached)
	if err != nil {
		t.Fatalf("the new secret is refused: %v", err)
	}
	if id.Tenant.SharedSecret != "new" {
		t.Fatal("the identity carries the stale record")
	}
	if len(e.rejected) != 0 {
		t.Fatalf("the retried refusal was counted: %v", e.rejected)
	}
}

func TestLayer_SignedInstall(t *testing.T) {
	e := mustEnv(t)
	install := identity.Policy{Kind: identity.SignedInstall}
	sign := func(aud string) *http.Request {
		url := e.eu.BaseURL + "/installed"
		tok, err := connectjwt.Signer{}.RS256(e.key, "k1", "t-new", aud, http.MethodPost, url, e.eu.BaseURL)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, url, nil)
		r.Header.Set("Authorization", "JWT "+tok)
		return r
	}
	r := sign(e.eu.BaseURL)
	id, err := e.layer.Authenticate(r, e.eu, install)
	if err != nil {
		t.Fatal(err)
	}
	if id.Kind != identity.SignedInstall || id.ClientKey != "t-new" || id.Tenant != nil {
		t.Fatalf("identity %+v", id)
	}
	if err := e.layer.RequireIssuer(r, id, "t-new"); err != nil {
		t.Fatal(err)
	}
	if err := e.layer.RequireIssuer(r, id, "someone-else"); realmhook.ErrorCode(err) != realmhook.EUNAUTHORIZED {
		t.Fatalf("a body naming another tenant: %v, want EUNAUTHORIZED", err)
	}
	if _, err := e.layer.Authenticate(sign("https://elsewhere.example"), e.eu, install); realmhook.ErrorCode(err) != realmhook.EUNAUTHORIZED {
		t.Fatalf("an audience that is not the app's: %v, want EUNAUTHORIZED", err)
	}
	// An HS256 token on a signed-install route.
	if _, err := e.layer.Authenticate(request(t, e.eu, "t-new", "s", "POST", "/installed", false), e.eu, install); realmhook.ErrorCode(err) != realmhook.EUNAUTHORIZED {
		t.Fatalf("HS256 on the install route: %v, want EUNAUTHORIZED", err)
	}
}
