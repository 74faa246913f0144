package hostsim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/realmhook/realmhook"
)

// Lifecycle events the host sends.
const (
	EventInstalled   = "installed"
	EventUninstalled = "uninstalled"
	EventEnabled     = "enabled"
	EventDisabled    = "disabled"
)

// InstallOptions says what to install where.
type InstallOptions struct {
	DescriptorURL string // the app's atlassian-connect.json
	// Realm is the realm the product site lives in: "global" or a
	// regionBaseUrls key. "" means the tenant's current realm, or global.
	Realm string
	// ClientKey names the tenant; "" makes a fresh one. Installing a known
	// tenant again is a re-install with a new shared secret.
	ClientKey string
}

// LifecycleError is a lifecycle call the app did not answer 2xx.
type LifecycleError struct {
	Event    string
	Response *Response
}

func (e *LifecycleError) Error() string {
	return fmt.Sprintf("%s: %s %s answered %s", e.Event, e.Response.Method, e.Response.URL, e.Response.Summary())
}

// lifecyclePayload is the body of every lifecycle call (docs/protocol.md).
type lifecyclePayload struct {
	Key                      string `json:"key"`
	ClientKey                string `json:"clientKey"`
	SharedSecret             string `json:"sharedSecret"`
	BaseURL                  string `json:"baseUrl"`
	DisplayURL               string `json:"displayUrl"`
	ProductType              string `json:"productType"`
	Description              string `json:"description"`
	EventType                string `json:"eventType"`
	ServiceEntitlementNumber string `json:"serviceEntitlementNumber"`
	InstallationID           string `json:"installationId"`
	PluginsVersion           string `json:"pluginsVersion"`
}

// Install sends a signed (RS256) installed call with a fresh shared secret to
// the realm's base URL and records the tenant once the app accepts it.
func (h *Host) Install(ctx context.Context, opts InstallOptions) (Tenant, error) {
	d, err := h.Descriptor(ctx, opts.DescriptorURL)
	if err != nil {
		return Tenant{}, err
	}
	kp, err := h.Keys()
	if err != nil {
		return Tenant{}, err
	}
	if err := h.checkKeyServer(ctx, h.keysURL(), kp); err != nil {
		return Tenant{}, err
	}
	t, err := h.newInstall(opts)
	if err != nil {
		return Tenant{}, err
	}
	base, err := d.RealmBaseURL(t.Realm)
	if err != nil {
		return Tenant{}, err
	}
	resp, err := h.lifecycle(ctx, d, t, EventInstalled, base, h.rs256(kp.Private, kp.ID, t.ClientKey, base))
	if err != nil {
		return Tenant{}, err
	}
	if !resp.OK() {
		return Tenant{}, &LifecycleError{Event: EventInstalled, Response: resp}
	}
	t.Installed, t.Enabled = true, true
	// The product checks the app's calls for iss = the app's key.
	t.AppKey = d.Key
	if err := h.putTenant(t); err != nil {
		return Tenant{}, err
	}
	fmt.Fprintf(h.out(), "installed %s in realm %s (%s): %s\n", t.ClientKey, t.Realm, base, resp.Summary())
	return t, nil
}

// newInstall makes the tenant an install would record, before the app is asked.
func (h *Host) newInstall(opts InstallOptions) (Tenant, error) {
	secret, err := randomBytes(32)
	if err != nil {
		return Tenant{}, err
	}
	t, known := h.Tenant(opts.ClientKey)
	if !known {
		key := opts.ClientKey
		if key == "" {
			r, err := randomBytes(8)
			if err != nil {
				return Tenant{}, err
			}
			key = "realmctl-" + hex.EncodeToString(r)
		}
		id, err := randomBytes(16)
		if err != nil {
			return Tenant{}, err
		}
		t = Tenant{
			ClientKey:      key,
			Realm:          realmhook.GlobalRealm,
			SiteURL:        h.siteURL(key),
			InstallationID: "ari:cloud:ecosystem::installation/" + uuidString(id),
		}
	}
	if opts.Realm != "" {
		t.Realm = NormalizeRealm(opts.Realm)
	}
	t.DescriptorURL = opts.DescriptorURL
	t.SharedSecret = base64.RawURLEncoding.EncodeToString(secret)
	return t, nil
}

// Uninstall sends a signed (RS256) uninstalled call to the tenant's realm.
func (h *Host) Uninstall(ctx context.Context, clientKey string) error {
	t, err := h.mustTenant(clientKey)
	if err != nil {
		return err
	}
	d, err := h.Descriptor(ctx, t.DescriptorURL)
	if err != nil {
		return err
	}
	kp, err := h.Keys()
	if err != nil {
		return err
	}
	base, err := d.RealmBaseURL(t.Realm)
	if err != nil {
		return err
	}
	resp, err := h.lifecycle(ctx, d, t, EventUninstalled, base, h.rs256(kp.Private, kp.ID, t.ClientKey, base))
	if err != nil {
		return err
	}
	if !resp.OK() {
		return &LifecycleError{Event: EventUninstalled, Response: resp}
	}
	t.Installed, t.Enabled = false, false
	fmt.Fprintf(h.out(), "uninstalled %s from realm %s: %s\n", t.ClientKey, t.Realm, resp.Summary())
	return h.putTenant(t)
}

// Enable sends the enabled lifecycle call, HS256-signed as the tenant.
func (h *Host) Enable(ctx context.Context, clientKey string) error {
	return h.toggle(ctx, clientKey, EventEnabled)
}

// Disable sends the disabled lifecycle call, HS256-signed as the tenant.
func (h *Host) Disable(ctx context.Context, clientKey string) error {
	return h.toggle(ctx, clientKey, EventDisabled)
}

func (h *Host) toggle(ctx context.Context, clientKey, event string) error {
	t, err := h.mustTenant(clientKey)
	if err != nil {
		return err
	}
	d, err := h.Descriptor(ctx, t.DescriptorURL)
	if err != nil {
		return err
	}
	base, err := d.RealmBaseURL(t.Realm)
	if err != nil {
		return err
	}
	resp, err := h.lifecycle(ctx, d, t, event, base, h.asTenant(t))
	if err != nil {
		return err
	}
	if !resp.OK() {
		return &LifecycleError{Event: event, Response: resp}
	}
	t.Enabled = event == EventEnabled
	fmt.Fprintf(h.out(), "%s %s in realm %s: %s\n", event, t.ClientKey, t.Realm, resp.Summary())
	return h.putTenant(t)
}

// lifecycle posts one lifecycle event for t to base, signed by token.
func (h *Host) lifecycle(ctx context.Context, d *Descriptor, t Tenant, event, base string, token tokenFunc) (*Response, error) {
	path, err := d.lifecyclePath(event)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(lifecyclePayload{
		Key:                      d.Key,
		ClientKey:                t.ClientKey,
		SharedSecret:             t.SharedSecret,
		BaseURL:                  t.SiteURL,
		DisplayURL:               t.SiteURL,
		ProductType:              "jira",
		Description:              "Atlassian JIRA simulated by realmctl host",
		EventType:                event,
		ServiceEntitlementNumber: "SEN-realmctl",
		InstallationID:           t.InstallationID,
		PluginsVersion:           "1001.0.0-SNAPSHOT",
	})
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", event, err)
	}
	rawURL, err := joinURL(base, path)
	if err != nil {
		return nil, err
	}
	return h.send(ctx, "POST", rawURL, base, body, token)
}

// rs256 signs a signed-install token with key/kid, aud = audience.
func (h *Host) rs256(key *rsa.PrivateKey, kid, clientKey, audience string) tokenFunc {
	return func(method, rawURL, baseURL string) (string, error) {
		return jwtHeader(h.signer().RS256(key, kid, clientKey, audience, method, rawURL, baseURL))
	}
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	return b, nil
}

// uuidString formats 16 random bytes as a version 4 UUID.
func uuidString(b []byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
