package identity_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/identity"
	"github.com/realmhook/realmhook/realms"
)

// fakeRemote is the other realms' processes: it holds one tenant in AU, or
// does not answer.
type fakeRemote struct {
	held, realm string
	down        bool
	asked       int
}

func (f *fakeRemote) Locate(_ context.Context, clientKey string, _ *http.Request, _ string, _ bool) (string, error) {
	f.asked++
	switch {
	case f.down:
		return "", realmhook.Unavailable(errors.New("AU did not answer"))
	case clientKey == f.held:
		return f.realm, nil
	}
	return "", nil
}

// mustRemoteEnv is the env with a remote realm AU that this process does
// not serve.
func mustRemoteEnv(t *testing.T, remote *fakeRemote) (*identity.Layer, *realms.Realm) {
	t.Helper()
	e := mustEnv(t)
	au, err := realms.NewRealm("AU", "http://au.app.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := realms.NewRegistry(e.eu, e.us, au)
	if err != nil {
		t.Fatal(err)
	}
	return identity.New(identity.Options{Realms: reg, Remote: remote, Log: func(*http.Request) *slog.Logger { return slog.New(slog.DiscardHandler) }}), e.eu
}

func TestLayer_Remote(t *testing.T) {
	pinnedCached := identity.Policy{Kind: identity.ConnectHS256, Realm: identity.PinnedRealm, Lookup: identity.Cached}
	anyRealm := identity.Policy{Kind: identity.ConnectHS256, Realm: identity.AnyRealm}

	t.Run("TenantCallMisdirected", func(t *testing.T) {
		remote := &fakeRemote{held: "t-au", realm: "AU"}
		l, eu := mustRemoteEnv(t, remote)
		_, err := l.Authenticate(request(t, eu, "t-au", "s", "GET", "/x", false), eu, pinnedCached)
		var e *realmhook.Error
		if !errors.As(err, &e) || e.Code != realmhook.EMISDIRECTED || e.Fields["correctBaseUrl"] != "http://au.app.test" || e.Fields["expectedRealm"] != "AU" {
			t.Fatalf("err = %v (%+v), want a 421 naming AU and its base URL", err, e)
		}
		// Asked once, after the database (not the cache) said no.
		if remote.asked != 1 {
			t.Fatalf("remote asked %d times, want 1", remote.asked)
		}
	})

	t.Run("HookHeldElsewhere", func(t *testing.T) {
		l, eu := mustRemoteEnv(t, &fakeRemote{held: "t-au", realm: "AU"})
		_, err := l.Authenticate(request(t, eu, "t-au", "s", "POST", "/x", false), eu, anyRealm)
		var held *identity.HeldElsewhere
		if !errors.As(err, &held) || held.Realm != "AU" || held.ClientKey != "t-au" {
			t.Fatalf("err = %v, want a HeldElsewhere naming AU", err)
		}
		if realmhook.ErrorCode(err) != realmhook.EMISDIRECTED {
			t.Fatalf("code = %s: a route that does not forward answers 421", realmhook.ErrorCode(err))
		}
	})

	t.Run("UnknownEverywhere", func(t *testing.T) {
		l, eu := mustRemoteEnv(t, &fakeRemote{})
		_, err := l.Authenticate(request(t, eu, "nobody", "s", "GET", "/x", false), eu, pinnedCached)
		if realmhook.ErrorCode(err) != realmhook.EUNAUTHORIZED {
			t.Fatalf("err = %v, want 401", err)
		}
	})

	t.Run("RealmDownIsUnavailable", func(t *testing.T) {
		l, eu := mustRemoteEnv(t, &fakeRemote{down: true})
		_, err := l.Authenticate(request(t, eu, "nobody", "s", "GET", "/x", false), eu, pinnedCached)
		if realmhook.ErrorCode(err) != realmhook.EUNAVAILABLE {
			t.Fatalf("err = %v, want EUNAVAILABLE, never unknown tenant", err)
		}
	})

	t.Run("LocalOnlyAsksNobody", func(t *testing.T) {
		remote := &fakeRemote{held: "t-au", realm: "AU"}
		l, eu := mustRemoteEnv(t, remote)
		r := request(t, eu, "t-au", "s", "GET", "/x", false)
		_, err := l.Authenticate(r.WithContext(identity.LocalOnly(r.Context())), eu, anyRealm)
		if realmhook.ErrorCode(err) != realmhook.EUNAUTHORIZED || remote.asked != 0 {
			t.Fatalf("err = %v, asked %d times; want 401 without asking", err, remote.asked)
		}
	})

	t.Run("HeldHereAsksNobody", func(t *testing.T) {
		remote := &fakeRemote{held: "t-eu", realm: "AU"}
		l, eu := mustRemoteEnv(t, remote)
		mustPut(t, eu, &realmhook.Tenant{ClientKey: "t-eu", SharedSecret: "s-eu", State: realmhook.TenantActive})
		if _, err := l.Authenticate(request(t, eu, "t-eu", "s-eu", "GET", "/x", false), eu, pinnedCached); err != nil || remote.asked != 0 {
			t.Fatalf("err = %v, asked %d times; want the local tenant without asking", err, remote.asked)
		}
	})
}
