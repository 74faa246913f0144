package hostsim_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/hostsim"
	"github.com/realmhook/realmhook/hostsim/fakeapp"
)

func TestKeyServer(t *testing.T) {
	kp, _ := mustKeys(t)
	h := hostsim.New()
	if err := h.SetKeys(kp); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.KeyServer())
	defer srv.Close()

	tests := []struct {
		name, method, path string
		wantStatus         int
	}{
		{"OK", "GET", "/" + kp.ID, 200},
		{"UnknownKid", "GET", "/realmctl-0000000000000000", 404},
		{"Root", "GET", "/", 404},
		{"Post", "POST", "/" + kp.ID, 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantStatus != 200 {
				return
			}
			pub, err := connectjwt.ParsePublicKeyPEM(body)
			if err != nil {
				t.Fatalf("served key: %v", err)
			}
			if !pub.Equal(&kp.Private.PublicKey) {
				t.Fatal("served key is not the host's public key")
			}
		})
	}
}

func TestHost_Install(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		e := mustEnv(t, fakeapp.Defects{})
		tn := e.mustInstall(t, "eu")
		if tn.Realm != "EU" || !tn.Installed || tn.SharedSecret == "" {
			t.Fatalf("tenant %+v, want installed in EU with a secret", tn)
		}
		if got := e.app.TenantRealm(tn.ClientKey); got != "EU" {
			t.Fatalf("app has the tenant in %q, want EU", got)
		}
	})
	t.Run("ReinstallRotatesSecret", func(t *testing.T) {
		e := mustEnv(t, fakeapp.Defects{})
		first := e.mustInstall(t, "EU")
		again, err := e.host.Install(context.Background(), hostsim.InstallOptions{DescriptorURL: e.descriptorURL, ClientKey: first.ClientKey})
		if err != nil {
			t.Fatal(err)
		}
		if again.SharedSecret == first.SharedSecret || again.Realm != "EU" {
			t.Fatalf("re-install kept secret or moved realm: %+v", again)
		}
		// The new secret is the one the app now verifies with.
		resp, err := e.host.CallRealm(context.Background(), first.ClientKey, "", "PUT", "/api/v1/properties/k", []byte(`1`))
		if err != nil || resp.StatusCode != 204 {
			t.Fatalf("call after re-install: %v %+v", err, resp)
		}
	})
	t.Run("StateFile", func(t *testing.T) {
		e := mustEnv(t, fakeapp.Defects{})
		path := filepath.Join(t.TempDir(), "state.json")
		h, err := hostsim.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		kp, _ := mustKeys(t)
		if err := h.SetKeys(kp); err != nil {
			t.Fatal(err)
		}
		if err := h.SetKeysURL(e.host.KeysURL); err != nil {
			t.Fatal(err)
		}
		tn, err := h.Install(context.Background(), hostsim.InstallOptions{DescriptorURL: e.descriptorURL, Realm: "US"})
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("state file mode %v, want 0600", fi.Mode().Perm())
		}
		reopened, err := hostsim.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := reopened.Tenant(tn.ClientKey)
		if !ok || got.Realm != "US" || got.SharedSecret != tn.SharedSecret || got.DescriptorURL != e.descriptorURL {
			t.Fatalf("reopened tenant %+v, want %+v", got, tn)
		}
		rk, err := reopened.Keys()
		if err != nil || rk.ID != kp.ID {
			t.Fatalf("reopened keys %q, %v; want %q", rk.ID, err, kp.ID)
		}
	})

	errTests := []struct {
		name     string
		setup    func(t *testing.T, e *env) hostsim.InstallOptions
		wantCode string
		wantMsg  string
	}{
		{"ErrNoKeyServer", func(t *testing.T, e *env) hostsim.InstallOptions {
			e.host.KeysURL = ""
			return hostsim.InstallOptions{DescriptorURL: e.descriptorURL, Realm: "EU"}
		}, realmhook.EINVALID, "no key server"},
		{"ErrRealmNotListed", func(t *testing.T, e *env) hostsim.InstallOptions {
			return hostsim.InstallOptions{DescriptorURL: e.descriptorURL, Realm: "JP"}
		}, realmhook.EINVALID, `realm "JP"`},
		{"ErrDescriptorURL", func(t *testing.T, e *env) hostsim.InstallOptions {
			return hostsim.InstallOptions{DescriptorURL: "not a url", Realm: "EU"}
		}, realmhook.EINVALID, "descriptor URL"},
		{"ErrKeyServerServesOtherKey", func(t *testing.T, e *env) hostsim.InstallOptions {
			other := httptest.NewServer(http.NotFoundHandler())
			t.Cleanup(other.Close)
			e.host.KeysURL = other.URL
			return hostsim.InstallOptions{DescriptorURL: e.descriptorURL, Realm: "EU"}
		}, realmhook.EINTERNAL, "answered 404"},
		{"ErrAppRefuses", func(t *testing.T, e *env) hostsim.InstallOptions {
			e.app.FailNext("installed", 1, 401, "")
			return hostsim.InstallOptions{DescriptorURL: e.descriptorURL, Realm: "EU"}
		}, realmhook.EINTERNAL, "installed: POST"},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEnv(t, fakeapp.Defects{})
			_, err := e.host.Install(context.Background(), tc.setup(t, e))
			if err == nil {
				t.Fatal("install succeeded, want an error")
			}
			if got := realmhook.ErrorCode(err); got != tc.wantCode {
				t.Fatalf("code %q, want %q (%v)", got, tc.wantCode, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q does not say %q", err, tc.wantMsg)
			}
			if len(e.host.Tenants()) != 0 {
				t.Fatalf("a refused install was recorded: %+v", e.host.Tenants())
			}
		})
	}
}

func TestHost_Lifecycle(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t, fakeapp.Defects{})
	tn := e.mustInstall(t, "EU")

	steps := []struct {
		name        string
		do          func() error
		wantEnabled bool
		wantInstall bool
	}{
		{"Disable", func() error { return e.host.Disable(ctx, tn.ClientKey) }, false, true},
		{"Enable", func() error { return e.host.Enable(ctx, tn.ClientKey) }, true, true},
		{"Uninstall", func() error { return e.host.Uninstall(ctx, tn.ClientKey) }, false, false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if err := s.do(); err != nil {
				t.Fatal(err)
			}
			got, _ := e.host.Tenant(tn.ClientKey)
			if got.Enabled != s.wantEnabled || got.Installed != s.wantInstall {
				t.Fatalf("tenant enabled=%v installed=%v, want %v %v", got.Enabled, got.Installed, s.wantEnabled, s.wantInstall)
			}
		})
	}
	for _, hook := range []string{"disabled", "enabled", "uninstalled"} {
		if n := e.app.Calls(hook); n != 1 {
			t.Errorf("app got %d %s calls, want 1", n, hook)
		}
	}
	t.Run("ErrUnknownTenant", func(t *testing.T) {
		err := e.host.Enable(ctx, "nobody")
		if realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
			t.Fatalf("err %v, want %s", err, realmhook.ENOTFOUND)
		}
	})
}

func TestHost_Call(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t, fakeapp.Defects{})
	tn := e.mustInstall(t, "EU")

	tests := []struct {
		name, realm, method, path string
		body                      string
		wantStatus                int
		wantBody                  string
	}{
		{"Put", "", "PUT", "/api/v1/properties/color", `{"v":"blue"}`, 204, ""},
		{"Get", "", "GET", "/api/v1/properties/color", "", 200, `{"v":"blue"}`},
		{"GetWithQuery", "", "GET", "/api/v1/properties/color?x=1&a=b%20c", "", 200, `{"v":"blue"}`},
		{"OtherRealmIsMisdirected", "US", "GET", "/api/v1/properties/color", "", 421, ""},
		{"Missing", "", "GET", "/api/v1/properties/nope", "", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			resp, err := e.host.CallRealm(ctx, tn.ClientKey, tc.realm, tc.method, tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, resp.Body)
			}
			if tc.wantBody != "" {
				var got, want any
				_ = json.Unmarshal(resp.Body, &got)
				_ = json.Unmarshal([]byte(tc.wantBody), &want)
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(want)
				if string(gb) != string(wb) {
					t.Fatalf("body %s, want %s", resp.Body, tc.wantBody)
				}
			}
		})
	}
	t.Run("ErrRelativePath", func(t *testing.T) {
		_, err := e.host.CallRealm(ctx, tn.ClientKey, "", "GET", "api/v1/properties/x", nil)
		if realmhook.ErrorCode(err) != realmhook.EINVALID {
			t.Fatalf("err %v, want %s", err, realmhook.EINVALID)
		}
	})
	t.Run("ErrUnknownTenant", func(t *testing.T) {
		_, err := e.host.CallRealm(ctx, "nobody", "", "GET", "/", nil)
		var re *realmhook.Error
		if !errors.As(err, &re) || re.Code != realmhook.ENOTFOUND {
			t.Fatalf("err %v, want %s", err, realmhook.ENOTFOUND)
		}
	})
}
