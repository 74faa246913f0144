package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/forgefit"
	"github.com/realmhook/realmhook/hostsim"
	"github.com/realmhook/realmhook/manifest"
)

const forgeAppID = "406d303d-0393-4ec4-ad7c-1435be94583a"

// forgeEnv is realmhook (the real binary) as a Connect-on-Forge remote,
// and the host emulator that signs its FITs and serves their JWKS.
type forgeEnv struct {
	s    *server
	ks   *keyServer
	host *hostsim.Host
	app  hostsim.ForgeInstall
}

func mustForgeEnv(t *testing.T) *forgeEnv {
	t.Helper()
	host := hostsim.New()
	host.RetryDelay = 10 * time.Millisecond
	jwks, err := host.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	jwksSrv := httptest.NewServer(jwks)
	t.Cleanup(jwksSrv.Close)
	ks := mustKeyServer(t)
	s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Extra: "forge:\n  appId: " + forgeAppID + "\n  jwksUrl: " + jwksSrv.URL + "/jwks.json\n  connect: true\n"})
	// The manifest the partner publishes, printed by the real realmctl.
	out := mustRealmctl(t, "manifest", "--config", s.cfgPath)
	m, err := manifest.Parse([]byte(out))
	if err != nil {
		t.Fatalf("realmctl manifest printed what is not a manifest: %v\n%s", err, out)
	}
	if p := manifest.Lint([]byte(out)); len(p) != 0 {
		t.Fatalf("realmctl manifest printed a manifest with problems %v:\n%s", p, out)
	}
	if m.App.Connect == nil || m.App.Connect.Remote != "backend" {
		t.Fatalf("a Connect-on-Forge manifest without app.connect.remote:\n%s", out)
	}
	app, err := hostsim.ForgeApp(m)
	if err != nil {
		t.Fatal(err)
	}
	return &forgeEnv{s: s, ks: ks, host: host, app: app}
}

func (e *forgeEnv) mustInstall(t *testing.T, realm, installation, cloud string) hostsim.Tenant {
	t.Helper()
	tn, err := e.host.ForgeInstall(t.Context(), hostsim.ForgeInstallOptions{App: e.app, Realm: realm, InstallationID: installation, CloudID: cloud})
	if err != nil {
		t.Fatalf("forge install in %s: %v", realm, err)
	}
	return tn
}

func (e *forgeEnv) mustCall(t *testing.T, inst, realm, method, path string, body []byte, want int) *hostsim.Response {
	t.Helper()
	resp, err := e.host.CallRealm(t.Context(), inst, realm, method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s at %s as %s: %s, want %d", method, path, realm, inst, resp.Summary(), want)
	}
	return resp
}

// TestForge_PinMigrateServe: a Forge installation pinned to EU by its
// installed event; data written through a FIT-authenticated call; migrated
// EU → US by FIT-signed hooks, each sent twice; served from US after
// commit and 421 at EU; a re-install on the site within 30 days lands in
// its realm with its data.
func TestForge_PinMigrateServe(t *testing.T) {
	t.Parallel()
	e := mustForgeEnv(t)
	tn := e.mustInstall(t, "EU", "", "")
	e.mustCall(t, tn.ClientKey, "", "PUT", "/api/v1/properties/color", []byte(`"blue"`), http.StatusCreated)
	e.mustCall(t, tn.ClientKey, "US", "GET", "/api/v1/properties/color", nil, http.StatusMisdirectedRequest)

	res, err := e.host.Migrate(t.Context(), hostsim.MigrateOptions{ClientKey: tn.ClientKey, To: "US", Poll: 50 * time.Millisecond, Window: time.Minute, Twice: true})
	if err != nil {
		t.Fatalf("migrate: %v (%s)", err, res.Reason)
	}
	if n := len(res.Calls); n < 8 {
		t.Fatalf("%d hook answers; every hook sent twice makes at least 8", n)
	}
	got := e.mustCall(t, tn.ClientKey, "US", "GET", "/api/v1/properties/color", nil, http.StatusOK)
	if !strings.Contains(string(got.Body), "blue") {
		t.Fatalf("US serves %s, want the value written in EU", got.Body)
	}
	mis := e.mustCall(t, tn.ClientKey, "EU", "GET", "/api/v1/properties/color", nil, http.StatusMisdirectedRequest)
	if !strings.Contains(string(mis.Body), `"expectedRealm":"US"`) {
		t.Fatalf("the 421 at EU does not name US: %s", mis.Body)
	}

	// Uninstalled, then installed again on the same site with a new
	// installation id: the host sends the event to the realm the site
	// lived in, and realmhook maps it back to the tenant and its data.
	if err := e.host.ForgeUninstall(t.Context(), tn.ClientKey); err != nil {
		t.Fatal(err)
	}
	again := e.mustInstall(t, "EU", "", tn.Forge.CloudID)
	if again.Realm != "US" || again.ClientKey == tn.ClientKey {
		t.Fatalf("re-install %s landed in %s", again.ClientKey, again.Realm)
	}
	got = e.mustCall(t, again.ClientKey, "US", "GET", "/api/v1/properties/color", nil, http.StatusOK)
	if !strings.Contains(string(got.Body), "blue") {
		t.Fatalf("the re-install sees %s, want its old data", got.Body)
	}
	// A host that sent the re-install to another realm is told where the
	// tenant is pinned.
	stray := hostsim.Tenant{ClientKey: again.ClientKey, Realm: "EU", Forge: again.Forge}
	resp, err := e.host.ForgeEvent(t.Context(), stray, manifest.LifecycleEvents[0])
	if err != nil || resp.StatusCode != http.StatusConflict || !strings.Contains(string(resp.Body), `"pinnedRealm":"US"`) {
		t.Fatalf("installed event at EU for a tenant pinned to US: %v %v", resp, err)
	}
}

// TestForge_ForgedFITsRefused: every forged FIT is refused on every route
// that takes a FIT, with the very body a forged Connect token gets.
func TestForge_ForgedFITsRefused(t *testing.T) {
	t.Parallel()
	e := mustForgeEnv(t)
	tn := e.mustInstall(t, "EU", "", "")
	signer, err := e.host.ForgeSigner()
	if err != nil {
		t.Fatal(err)
	}
	forged, err := hostsim.ForgedFITs(signer, forgefit.Invocation{AppARI: e.app.AppARI, InstallationID: tn.ClientKey, CloudID: tn.Forge.CloudID})
	if err != nil {
		t.Fatal(err)
	}
	migration := []byte(`{"migrationId":"1","startTime":"2026-01-01T00:00:00Z","endTime":"2026-01-02T00:00:00Z","location":"US"}`)
	routes := []struct {
		method, path string
		body         []byte
	}{
		{"POST", "/forge/events", []byte(`{"eventType":"avi:forge:installed:app","id":"` + tn.ClientKey + `"}`)},
		{"POST", "/migration/schedule", migration},
		{"POST", "/migration/start", migration},
		{"GET", "/migration/status?migrationId=1", nil},
		{"POST", "/migration/commit", []byte(`{"migrationId":"1"}`)},
		{"POST", "/migration/rollback", []byte(`{"migrationId":"1"}`)},
		{"POST", "/dare-migration/schedule", migration},
		{"GET", "/api/v1/properties", nil},
		{"GET", "/api/v1/properties/k", nil},
		{"PUT", "/api/v1/properties/k", []byte(`"x"`)},
		{"DELETE", "/api/v1/properties/k", nil},
		{"POST", "/enabled", nil},
	}
	base := e.s.realmURL("EU")
	connect := do(t, "GET", base+"/api/v1/properties", http.Header{"Authorization": {"JWT " + forgedConnect(t, base)}}, nil)
	mustStatus(t, connect, http.StatusUnauthorized, "forged Connect token")
	refusals := 0
	for _, f := range forged {
		for _, r := range routes {
			resp := do(t, r.method, base+r.path, http.Header{"Authorization": {"Bearer " + f.Token}}, r.body)
			if resp.Status != http.StatusUnauthorized || string(resp.Body) != string(connect.Body) {
				t.Errorf("%s FIT on %s %s: %d %s; want 401 %s", f.Name, r.method, r.path, resp.Status, resp.Body, connect.Body)
			}
			refusals++
		}
	}
	if refusals != len(forged)*len(routes) || len(forged) != 7 {
		t.Fatalf("%d refusals of %d forgeries", refusals, len(forged))
	}
	// The genuine FIT still works, so the refusals were about the forgery.
	e.mustCall(t, tn.ClientKey, "EU", "GET", "/api/v1/properties", nil, http.StatusOK)
}

// forgedConnect is a Connect token for a tenant that does not exist.
func forgedConnect(t *testing.T, base string) string {
	t.Helper()
	tok, err := connectjwt.Signer{}.HS256([]byte("not-a-secret"), "nobody", "GET", base+"/api/v1/properties", base)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestForge_ConnectOnForge: a Connect installation whose install named its
// Forge installation is one tenant, served by both protocols; the product
// API tokens Forge sends beside a FIT never reach the log.
func TestForge_ConnectOnForge(t *testing.T) {
	t.Parallel()
	e := mustForgeEnv(t)
	ten := newTenant(t)
	const inst = "8d5f651a-b2e9-4b38-aac6-30abc7f3effb"
	base := e.s.realmURL("EU")
	var body map[string]any
	if err := json.Unmarshal(installBody(ten, "installed"), &body); err != nil {
		t.Fatal(err)
	}
	body["installationId"] = forgefit.InstallationARIPrefix + inst
	b, _ := json.Marshal(body)
	tok, err := connectjwt.Signer{}.RS256(e.ks.Key, e.ks.Kid, ten.ClientKey, base, http.MethodPost, base+"/installed", base)
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, do(t, "POST", base+"/installed", http.Header{"Authorization": {"JWT " + tok}}, b), http.StatusNoContent, "Connect install")
	mustStatus(t, call(t, e.s, ten, "EU", "PUT", "/api/v1/properties/plan", []byte(`"gold"`)), http.StatusCreated, "Connect write")

	signer, err := e.host.ForgeSigner()
	if err != nil {
		t.Fatal(err)
	}
	fit, err := signer.Mint(forgefit.Invocation{AppARI: e.app.AppARI, InstallationID: inst, CloudID: "4869c4ef-cb0d-4108-8243-8929ac7cc1fa"})
	if err != nil {
		t.Fatal(err)
	}
	const oauth = "opaque-product-api-token-0f3a9c"
	h := http.Header{"Authorization": {"Bearer " + fit}, "X-Forge-Oauth-System": {oauth}, "X-Forge-Oauth-User": {oauth}}
	got := do(t, "GET", base+"/api/v1/properties/plan", h, nil)
	mustStatus(t, got, http.StatusOK, "Forge read of the Connect tenant's data")
	if !strings.Contains(string(got.Body), "gold") {
		t.Fatalf("the FIT reads %s, want the Connect tenant's value", got.Body)
	}
	mustStatus(t, do(t, "PUT", base+"/api/v1/properties/seat", h, []byte(`3`)), http.StatusCreated, "Forge write")
	back := call(t, e.s, ten, "EU", "GET", "/api/v1/properties/seat", nil)
	mustStatus(t, back, http.StatusOK, "Connect read of the Forge write")
	mustStatus(t, do(t, "GET", e.s.realmURL("US")+"/api/v1/properties/plan", h, nil), http.StatusMisdirectedRequest, "Forge call at US")

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	waitFor(t, 5*time.Second, "the access log line", func() bool { return ctx.Err() == nil && strings.Contains(e.s.Output(), "/api/v1/properties/seat") })
	for _, secret := range []string{oauth, fit, strings.Split(fit, ".")[2]} {
		if strings.Contains(e.s.Output(), secret) {
			t.Fatalf("the log holds a token:\n%s", e.s.Output())
		}
	}
}
