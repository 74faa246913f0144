package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/hostsim"
)

// egressToken is the token the app signs for an egress call.
func egressToken(t *testing.T, sub string, iat time.Time, life time.Duration) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Audience: jwt.ClaimStrings{"realmhook-egress"}, Subject: sub,
		IssuedAt: jwt.NewNumericDate(iat), ExpiresAt: jwt.NewNumericDate(iat.Add(life)),
	}).SignedString([]byte(testIdentitySecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestEgress_ThroughTheBinary: the app reaches the product's REST API (the
// host emulator's stub) through realmhook's egress listener, which signs for
// the tenant; the stub checks that signature. Refusals read as realmhook's.
func TestEgress_ThroughTheBinary(t *testing.T) {
	t.Parallel()
	ks := mustKeyServer(t)
	host := hostsim.New()
	product := httptest.NewServer(host.Product())
	t.Cleanup(product.Close)
	app := newEventsApp(t)
	egressAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	srv := mustStartServer(t, serverConfig{KeysURL: ks.URL, Extra: gatewayYAML(app.URL) + "  egressListen: " + egressAddr + "\n"})
	egressURL := "http://" + egressAddr

	// The host installs the tenant with its site at the stub.
	ten := newTenant(t)
	site := product.URL + hostsim.SitesPath + ten.ClientKey
	if err := host.RecordTenant(hostsim.Tenant{ClientKey: ten.ClientKey, SharedSecret: ten.Secret, AppKey: "com.example.realmhook-app",
		SiteURL: site, Realm: "EU", Installed: true}); err != nil {
		t.Fatal(err)
	}
	base := srv.realmURL("EU")
	tok, err := connectjwt.Signer{}.RS256(ks.Key, ks.Kid, ten.ClientKey, base, http.MethodPost, base+"/installed", base)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"key": "com.example.realmhook-app", "clientKey": ten.ClientKey,
		"sharedSecret": ten.Secret, "baseUrl": site, "eventType": "installed"})
	mustStatus(t, do(t, http.MethodPost, base+"/installed", http.Header{"Authorization": {"JWT " + tok}}, body), http.StatusNoContent, "install")

	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	r := do(t, "GET", egressURL+"/host/"+ten.ClientKey+"/rest/api/3/myself", bearer(egressToken(t, ten.ClientKey, time.Now(), time.Minute)), nil)
	mustStatus(t, r, http.StatusOK, "egress GET myself")
	if got := r.JSON(t)["accountId"]; got != "app:com.example.realmhook-app" {
		t.Fatalf("myself accountId %v", got)
	}

	other := newTenant(t)
	for _, c := range []struct {
		name, path, token string
		status            int
		code              string
	}{
		{"OtherTenantsToken", "/host/" + ten.ClientKey + "/rest/api/3/myself", egressToken(t, other.ClientKey, time.Now(), time.Minute), 401, "unauthorized"},
		{"Expired", "/host/" + ten.ClientKey + "/rest/api/3/myself", egressToken(t, ten.ClientKey, time.Now().Add(-3*time.Minute), time.Minute), 401, "unauthorized"},
		{"LivesTooLong", "/host/" + ten.ClientKey + "/rest/api/3/myself", egressToken(t, ten.ClientKey, time.Now(), 10*time.Minute), 401, "unauthorized"},
		{"OutsideTheSite", "/host/" + ten.ClientKey + "/%2e%2e/" + other.ClientKey + "/rest/api/3/myself", egressToken(t, ten.ClientKey, time.Now(), time.Minute), 400, "invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, "GET", egressURL+c.path, bearer(c.token), nil)
			mustStatus(t, r, c.status, c.name)
			if got := r.JSON(t)["error"]; got != c.code {
				t.Fatalf("error %v, want %s: %s", got, c.code, r.Body)
			}
		})
	}
	// The tokens never reach the log.
	if out := srv.Output(); strings.Contains(out, ten.Secret) || strings.Contains(out, "Bearer") {
		t.Fatal("the log holds a secret or a bearer token")
	}
}
