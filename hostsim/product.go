package hostsim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/realmhook/realmhook/connectjwt"
)

// SitesPath is where the product stub serves each tenant's site: a tenant
// installed while a ProductURL is recorded has the site URL
// {ProductURL}/sites/{clientKey}, which the app (or realmhook's egress)
// calls the product's REST API under.
const SitesPath = "/sites/"

// productLeeway is the clock skew the product stub allows an app's token.
const productLeeway = 30 * time.Second

// SetProductURL records where the product stub runs (`realmctl host
// product`), so that later installs give tenants a site URL under it.
func (h *Host) SetProductURL(u string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.st.ProductURL = strings.TrimRight(u, "/")
	return h.saveLocked()
}

// siteURL is the product site of a new tenant.
func (h *Host) siteURL(clientKey string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st.ProductURL != "" {
		return h.st.ProductURL + SitesPath + url.PathEscape(clientKey)
	}
	return "https://" + clientKey + ".atlassian.net"
}

// currentTenant is the tenant as the state file has it now: the product stub
// runs beside other realmctl commands that install tenants.
func (h *Host) currentTenant(clientKey string) (Tenant, bool) {
	if h.path != "" {
		if st, err := loadState(h.path); err == nil {
			if t, ok := st.Tenants[clientKey]; ok {
				return *t, true
			}
			return Tenant{}, false
		}
	}
	return h.Tenant(clientKey)
}

// Product is a stub of the product's REST API for every installed tenant,
// at {SitesPath}{clientKey}/rest/...: it checks each call as the product
// checks a Connect app's, a JWT (Authorization: JWT) signed HS256 with the
// tenant's shared secret, iss the app's key and qsh over the request
// relative to the site URL, and answers GET /rest/api/3/myself and
// /rest/api/3/serverInfo. Refusals are 401 JSON naming what was wrong.
func (h *Host) Product() http.Handler {
	verifier := connectjwt.Verifier{Leeway: productLeeway, Now: h.now}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := r.URL.EscapedPath()
		rest, ok := strings.CutPrefix(raw, SitesPath)
		seg, sub, _ := strings.Cut(rest, "/")
		clientKey, err := url.PathUnescape(seg)
		if !ok || err != nil || clientKey == "" {
			writeProductError(w, http.StatusNotFound, "not_found", "the product stub serves "+SitesPath+"{clientKey}/rest/...")
			return
		}
		t, known := h.currentTenant(clientKey)
		if !known || !t.Installed {
			writeProductError(w, http.StatusNotFound, "not_found", "no site for tenant "+clientKey)
			return
		}
		token, terr := connectjwt.TokenFromRequest(r)
		if terr != nil || token == "" {
			writeProductError(w, http.StatusUnauthorized, "unauthorized", "an app call needs Authorization: JWT <token>")
			return
		}
		basePath := SitesPath + seg
		if _, err := verifier.VerifyHS256(token, []byte(t.SharedSecret), t.AppKey, r, basePath, false); err != nil {
			writeProductError(w, http.StatusUnauthorized, "unauthorized", "the app's token is refused: "+err.Error())
			return
		}
		site := strings.TrimSuffix(t.SiteURL, "/")
		switch {
		case r.Method == http.MethodGet && sub == "rest/api/3/myself":
			writeProductJSON(w, map[string]any{"accountId": "app:" + t.AppKey, "accountType": "app",
				"displayName": t.AppKey, "active": true, "self": site + "/rest/api/3/myself"})
		case r.Method == http.MethodGet && sub == "rest/api/3/serverInfo":
			writeProductJSON(w, map[string]any{"baseUrl": site, "deploymentType": "Cloud",
				"serverTitle": "realmctl host product stub", "realm": t.Realm})
		default:
			writeProductError(w, http.StatusNotFound, "not_found", "the product stub has no "+r.Method+" /"+sub)
		}
	})
}

func writeProductJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeProductError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg})
}
