package hostsim_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/hostsim"
)

func TestProduct_ChecksTheAppsToken(t *testing.T) {
	t.Parallel()
	h := hostsim.New()
	srv := httptest.NewServer(h.Product())
	defer srv.Close()
	site := srv.URL + hostsim.SitesPath + "acme"
	if err := h.RecordTenant(hostsim.Tenant{ClientKey: "acme", SharedSecret: "secret", AppKey: "app", SiteURL: site, Installed: true}); err != nil {
		t.Fatal(err)
	}
	myself := site + "/rest/api/3/myself"
	sign := func(secret, iss, method, signedURL string) string {
		tok, err := connectjwt.Signer{}.HS256([]byte(secret), iss, method, signedURL, site)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name, url, token string
		want             int
	}{
		{"Signed", myself, sign("secret", "app", "GET", myself), 200},
		{"SignedWithQuery", site + "/rest/api/3/serverInfo?a=1", sign("secret", "app", "GET", site+"/rest/api/3/serverInfo?a=1"), 200},
		{"NoToken", myself, "", 401},
		{"WrongSecret", myself, sign("other", "app", "GET", myself), 401},
		{"IssuerNotTheAppKey", myself, sign("secret", "acme", "GET", myself), 401},
		{"QSHOfAnotherRequest", myself, sign("secret", "app", "POST", myself), 401},
		{"QSHOfAnotherPath", myself, sign("secret", "app", "GET", site+"/rest/api/3/serverInfo"), 401},
		{"UnknownSite", srv.URL + hostsim.SitesPath + "nobody/rest/api/3/myself", sign("secret", "app", "GET", myself), 404},
		{"UnknownRoute", site + "/rest/api/3/x", sign("secret", "app", "GET", site+"/rest/api/3/x"), 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", tt.url, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "JWT "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d (%s), want %d JSON", resp.StatusCode, resp.Header.Get("Content-Type"), tt.want)
			}
		})
	}
}
