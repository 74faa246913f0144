package hostsim

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"sort"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/forgefit"
	"github.com/realmhook/realmhook/manifest"
)

// ForgeInstall is what the host knows of a Forge installation's app: read
// from its manifest.yml, so any Forge remote can be driven.
type ForgeInstall struct {
	AppARI  string `json:"appAri"`
	CloudID string `json:"cloudId,omitempty"`
	// BaseURLs are the remote's base URLs by realm ("global" for default).
	BaseURLs      map[string]string `json:"baseUrls"`
	MigrationPath string            `json:"migrationPath"`
	EventsPath    string            `json:"eventsPath"`
}

func (f *ForgeInstall) base(realm string) (string, error) {
	u, ok := f.BaseURLs[NormalizeRealm(realm)]
	if !ok {
		return "", realmhook.Errorf(realmhook.EINVALID, "the remote has no base URL for realm %q (it has %v)", realm, sortedKeys(f.BaseURLs))
	}
	return u, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ForgeApp reads the Forge app a manifest.yml describes: its id, the
// remote of its migration:dataResidency module and that remote's base URL
// map, the module's path, and where the lifecycle trigger delivers events.
func ForgeApp(m *manifest.Manifest) (ForgeInstall, error) {
	ari, err := forgefit.AppARI(m.App.ID)
	if err != nil {
		return ForgeInstall{}, realmhook.Errorf(realmhook.EINVALID, "manifest app.id: %s", realmhook.ErrorMessage(err))
	}
	if len(m.Modules.Migration) == 0 {
		return ForgeInstall{}, realmhook.Errorf(realmhook.EINVALID, "manifest has no migration:dataResidency module")
	}
	mod := m.Modules.Migration[0]
	r, ok := m.Remote(mod.Remote)
	if !ok {
		return ForgeInstall{}, realmhook.Errorf(realmhook.EINVALID, "manifest: no remote %q", mod.Remote)
	}
	f := ForgeInstall{AppARI: ari, MigrationPath: mod.Path, BaseURLs: map[string]string{}}
	if r.BaseURL.One != "" {
		f.BaseURLs[GlobalRealm] = r.BaseURL.One
	} else {
		f.BaseURLs[GlobalRealm] = r.BaseURL.Default
		for _, k := range r.BaseURL.RegionKeys() {
			f.BaseURLs[k] = r.BaseURL.Regions[k]
		}
	}
	if remote, path, ok := m.LifecyclePath(); ok && remote == mod.Remote {
		f.EventsPath = path
	}
	return f, nil
}

// GlobalRealm is the realm behind a remote's default base URL.
const GlobalRealm = realmhook.GlobalRealm

// ForgeSigner returns the key the host signs Forge Invocation Tokens with,
// loading it from the state or generating (and saving) one on first use.
func (h *Host) ForgeSigner() (*forgefit.Signer, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.forge != nil {
		return h.forge, nil
	}
	if h.st.ForgeKeyPEM != "" {
		k, err := decodePrivateKey(h.st.ForgeKeyPEM)
		if err != nil {
			return nil, err
		}
		h.forge = &forgefit.Signer{Key: k, KID: h.st.ForgeKeyID}
		return h.forge, nil
	}
	kid, err := randomBytes(6)
	if err != nil {
		return nil, err
	}
	s, err := forgefit.NewSigner(fmt.Sprintf("realmctl-forge-%x", kid))
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(s.Key)
	if err != nil {
		return nil, fmt.Errorf("encode forge key: %w", err)
	}
	h.st.ForgeKeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	h.st.ForgeKeyID = s.KID
	h.forge = s
	return s, h.saveLocked()
}

// JWKS serves the JWKS that verifies the host's FITs, at any path.
func (h *Host) JWKS() (http.Handler, error) {
	s, err := h.ForgeSigner()
	if err != nil {
		return nil, err
	}
	body, err := s.JWKS()
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}), nil
}

// fit signs a Forge Invocation Token for the installation, as the
// Authorization header Forge sends.
func (h *Host) fit(t Tenant) (string, error) {
	s, err := h.ForgeSigner()
	if err != nil {
		return "", err
	}
	tok, err := s.Mint(forgefit.Invocation{AppARI: t.Forge.AppARI, InstallationID: t.ClientKey, CloudID: t.Forge.CloudID, IssuedAt: h.now()})
	return "Bearer " + tok, err
}

// ForgeInstallOptions says which Forge app to install where.
type ForgeInstallOptions struct {
	App ForgeInstall
	// Realm is the realm whose base URL receives the installed event (""
	// means global).
	Realm string
	// InstallationID is the new installation's id; "" makes a random one.
	InstallationID string
	// CloudID is the site's; "" makes a random one. Install again with the
	// same one to play a re-install on the same site.
	CloudID string
}

// ForgeInstall installs a Forge app: it delivers avi:forge:installed:app
// to the realm's base URL + the lifecycle endpoint, with a FIT, and records
// the installation.
func (h *Host) ForgeInstall(ctx context.Context, opts ForgeInstallOptions) (Tenant, error) {
	if opts.App.EventsPath == "" {
		return Tenant{}, realmhook.Errorf(realmhook.EINVALID, "the app's manifest delivers no lifecycle events to its remote (no trigger endpoint)")
	}
	inst, cloud := opts.InstallationID, opts.CloudID
	for _, p := range []*string{&inst, &cloud} {
		if *p == "" {
			b, err := randomBytes(16)
			if err != nil {
				return Tenant{}, err
			}
			*p = uuidString(b)
		}
	}
	app := opts.App
	app.CloudID = cloud
	realm := NormalizeRealm(opts.Realm)
	if realm == "" {
		realm = GlobalRealm
	}
	// Realm persistence: a re-install on a site whose app was uninstalled
	// goes to the realm the site's installation lived in.
	for _, prev := range h.Tenants() {
		if prev.Forge != nil && prev.Forge.CloudID == cloud && !prev.Installed && prev.ClientKey != forgefit.InstallationID(inst) {
			realm = prev.Realm
		}
	}
	t := Tenant{ClientKey: forgefit.InstallationID(inst), Realm: realm, Forge: &app, Installed: true, Enabled: true}
	resp, err := h.ForgeEvent(ctx, t, manifest.LifecycleEvents[0])
	if err != nil {
		return Tenant{}, err
	}
	if !resp.OK() {
		return Tenant{}, &LifecycleError{Event: "forge installed", Response: resp}
	}
	return t, h.putTenant(t)
}

// ForgeUninstall delivers avi:forge:uninstalled:app for an installation.
func (h *Host) ForgeUninstall(ctx context.Context, installationID string) error {
	t, err := h.mustTenant(forgefit.InstallationID(installationID))
	if err != nil {
		return err
	}
	resp, err := h.ForgeEvent(ctx, t, manifest.LifecycleEvents[2])
	if err != nil {
		return err
	}
	if !resp.OK() {
		return &LifecycleError{Event: "forge uninstalled", Response: resp}
	}
	t.Installed, t.Enabled = false, false
	return h.putTenant(t)
}

// ForgeEvent delivers one lifecycle event for the installation to its
// realm's base URL, as a trigger with a remote endpoint does.
func (h *Host) ForgeEvent(ctx context.Context, t Tenant, event string) (*Response, error) {
	if t.Forge == nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "tenant %q is not a Forge installation", t.ClientKey)
	}
	base, err := t.Forge.base(t.Realm)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]any{
		"eventType": event,
		"id":        t.ClientKey,
		"app":       map[string]string{"id": t.Forge.AppARI, "version": "1.0.0"},
		"context":   "ari:cloud:jira::site/" + t.Forge.CloudID,
	})
	if err != nil {
		return nil, err
	}
	return h.sendRetried(ctx, http.MethodPost, base+t.Forge.EventsPath, base, body, h.asTenant(t))
}
