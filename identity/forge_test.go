package identity_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/forgefit"
	"github.com/realmhook/realmhook/identity"
	"github.com/realmhook/realmhook/identitytoken"
	"github.com/realmhook/realmhook/realms"
)

const forgeApp = "ari:cloud:ecosystem::app/406d303d-0393-4ec4-ad7c-1435be94583a"

type forgeEnv struct {
	*env
	signer *forgefit.Signer
	now    time.Time
}

func mustForgeEnv(t *testing.T) *forgeEnv {
	t.Helper()
	e := mustEnv(t)
	signer, err := forgefit.NewSigner("fk-1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := signer.Keys()
	if err != nil {
		t.Fatal(err)
	}
	fe := &forgeEnv{env: e, signer: signer, now: time.Now()}
	reg, err := realms.NewRegistry(e.eu, e.us)
	if err != nil {
		t.Fatal(err)
	}
	e.layer = identity.New(identity.Options{
		Realms:   reg,
		Forge:    &forgefit.Verifier{AppARI: forgeApp, Keys: keys, Leeway: 30 * time.Second},
		Rejected: func(reason string) { e.rejected = append(e.rejected, reason) },
		Now:      func() time.Time { return fe.now },
	})
	return fe
}

func (fe *forgeEnv) fit(t *testing.T, realm *realms.Realm, installation, cloud string) *http.Request {
	t.Helper()
	tok, err := fe.signer.Mint(forgefit.Invocation{AppARI: forgeApp, InstallationID: installation, CloudID: cloud})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, realm.BaseURL+"/api/v1/properties", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func TestLayer_Forge(t *testing.T) {
	fe := mustForgeEnv(t)
	pin := identity.Policy{Kind: identity.ConnectHS256, Realm: identity.PinnedRealm, Lookup: identity.Cached, PinForge: true}
	anyRealm := identity.Policy{Kind: identity.ConnectHS256, Realm: identity.AnyRealm}

	t.Run("FirstInvocationPins", func(t *testing.T) {
		id, err := fe.layer.Authenticate(fe.fit(t, fe.eu, "inst-1", "site-1"), fe.eu, pin)
		if err != nil {
			t.Fatal(err)
		}
		if id.Kind != identity.ForgeFIT || id.Home.Key != "EU" || id.ClientKey != "inst-1" || id.Tenant.CloudID != "site-1" {
			t.Fatalf("identity %+v", id)
		}
	})
	t.Run("OtherRealmIsMisdirected", func(t *testing.T) {
		_, err := fe.layer.Authenticate(fe.fit(t, fe.us, "inst-1", "site-1"), fe.us, pin)
		if realmhook.ErrorCode(err) != realmhook.EMISDIRECTED {
			t.Fatalf("err %v, want 421", err)
		}
	})
	t.Run("MigrationHookOnAnyRealm", func(t *testing.T) {
		id, err := fe.layer.Authenticate(fe.fit(t, fe.us, "ari:cloud:ecosystem::installation/inst-1", ""), fe.us, anyRealm)
		if err != nil || id.Home.Key != "EU" {
			t.Fatalf("identity %+v, %v", id, err)
		}
	})
	t.Run("UnknownInstallationOnHook", func(t *testing.T) {
		_, err := fe.layer.Authenticate(fe.fit(t, fe.us, "inst-9", ""), fe.us, anyRealm)
		_, forged := fe.layer.Authenticate(request(t, fe.us, "nobody", "s", "GET", "/x", false), fe.us, anyRealm)
		if realmhook.ErrorCode(err) != realmhook.EUNAUTHORIZED || body(t, err) != body(t, forged) {
			t.Fatalf("unknown installation: %v", err)
		}
	})
	t.Run("ReinstallWithinWindowKeepsTenant", func(t *testing.T) {
		if _, _, err := fe.layer.UninstallForge(t.Context(), "inst-1"); err != nil {
			t.Fatal(err)
		}
		fe.now = fe.now.Add(29 * 24 * time.Hour)
		id, err := fe.layer.Authenticate(fe.fit(t, fe.us, "inst-2", "site-1"), fe.us, pin)
		if realmhook.ErrorCode(err) != realmhook.EMISDIRECTED {
			t.Fatalf("re-install called on US: %+v, %v; want 421 to EU", id, err)
		}
		id, err = fe.layer.Authenticate(fe.fit(t, fe.eu, "inst-2", "site-1"), fe.eu, pin)
		if err != nil || id.ClientKey != "inst-1" || id.Tenant.InstallationID != "inst-2" {
			t.Fatalf("identity %+v, %v; want tenant inst-1 re-installed as inst-2", id, err)
		}
	})
	t.Run("ReinstallAfterWindowIsNew", func(t *testing.T) {
		if _, _, err := fe.layer.UninstallForge(t.Context(), "inst-2"); err != nil {
			t.Fatal(err)
		}
		fe.now = fe.now.Add(31 * 24 * time.Hour)
		id, err := fe.layer.Authenticate(fe.fit(t, fe.us, "inst-3", "site-1"), fe.us, pin)
		if err != nil || id.ClientKey != "inst-3" || id.Home.Key != "US" {
			t.Fatalf("identity %+v, %v; want a new tenant in US", id, err)
		}
	})
	t.Run("ConnectOnForgeIsOneTenant", func(t *testing.T) {
		mustPut(t, fe.eu, &realmhook.Tenant{ClientKey: "connect-ck", SharedSecret: "s", InstallationID: "ari:cloud:ecosystem::installation/inst-c", State: realmhook.TenantActive})
		id, err := fe.layer.Authenticate(fe.fit(t, fe.eu, "inst-c", "site-c"), fe.eu, pin)
		if err != nil || id.ClientKey != "connect-ck" {
			t.Fatalf("identity %+v, %v; want the Connect tenant", id, err)
		}
		cid, err := fe.layer.Authenticate(request(t, fe.eu, "connect-ck", "s", "GET", "/x", false), fe.eu, pin)
		if err != nil || cid.Tenant.CloudID != "site-c" {
			t.Fatalf("connect identity %+v, %v; want the cloud id recorded", cid, err)
		}
	})
	t.Run("ForgedReadsLikeConnect", func(t *testing.T) {
		r := fe.fit(t, fe.eu, "inst-1", "")
		r.Header.Set("Authorization", r.Header.Get("Authorization")+"x")
		_, forged := fe.layer.Authenticate(r, fe.eu, pin)
		_, connect := fe.layer.Authenticate(request(t, fe.eu, "nobody", "s", "GET", "/x", false), fe.eu, pin)
		if body(t, forged) != body(t, connect) {
			t.Fatalf("a forged FIT reads %s, a bad Connect token %s", body(t, forged), body(t, connect))
		}
	})
	t.Run("BearerWithoutForge", func(t *testing.T) {
		plain := mustEnv(t)
		_, err := plain.layer.Authenticate(fe.fit(t, plain.eu, "inst-1", ""), plain.eu, pin)
		if realmhook.ErrorCode(err) != realmhook.EUNAUTHORIZED {
			t.Fatalf("err %v", err)
		}
	})
}

func TestIdentity_Token(t *testing.T) {
	fe := mustForgeEnv(t)
	pin := identity.Policy{Kind: identity.ConnectHS256, Realm: identity.PinnedRealm, PinForge: true}
	tok, err := fe.signer.Mint(forgefit.Invocation{AppARI: forgeApp, InstallationID: "inst-t", CloudID: "site-t", Principal: "acct-1"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, fe.eu.BaseURL+"/x", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	id, err := fe.layer.Authenticate(r, fe.eu, pin)
	if err != nil {
		t.Fatal(err)
	}
	got := id.Token()
	want := identitytoken.Identity{ClientKey: "inst-t", Realm: "EU", User: "acct-1", Protocol: "forge", InstallationID: "inst-t", CloudID: "site-t", Principal: "acct-1"}
	if got.Protocol != want.Protocol || got.ClientKey != want.ClientKey || got.Realm != want.Realm || got.InstallationID != want.InstallationID ||
		got.CloudID != want.CloudID || got.Principal != want.Principal || got.User != want.User {
		t.Fatalf("token identity %+v, want %+v", got, want)
	}
	mustPut(t, fe.eu, &realmhook.Tenant{ClientKey: "ck", SharedSecret: "s", State: realmhook.TenantActive})
	cid, err := fe.layer.Authenticate(request(t, fe.eu, "ck", "s", "GET", "/x", false), fe.eu, pin)
	if err != nil {
		t.Fatal(err)
	}
	if ct := cid.Token(); ct.Protocol != "connect" || ct.ClientKey != "ck" || ct.InstallationID != "" {
		t.Fatalf("connect token identity %+v", ct)
	}
}
