package hooks

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/identity"
	"github.com/realmhook/realmhook/realms"
)

// installBody is the host's install/uninstall payload (docs/protocol.md).
type installBody struct {
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
	OAuthClientID            string `json:"oauthClientId"`
	PluginsVersion           string `json:"pluginsVersion"`
}

const maxClientKeyBytes = 255

func (b *installBody) validate(appKey, eventType string) error {
	switch {
	case b.ClientKey == "":
		return realmhook.Errorf(realmhook.EINVALID, "clientKey is required")
	case len(b.ClientKey) > maxClientKeyBytes:
		return realmhook.Errorf(realmhook.EINVALID, "clientKey is longer than %d bytes", maxClientKeyBytes)
	case b.EventType != "" && b.EventType != eventType:
		return realmhook.Errorf(realmhook.EINVALID, "eventType is %q on the %s hook", b.EventType, eventType)
	case appKey != "" && b.Key != "" && b.Key != appKey:
		return realmhook.Errorf(realmhook.EINVALID, "key %q is not this app's key %q", b.Key, appKey)
	}
	if eventType != "installed" {
		return nil
	}
	if b.SharedSecret == "" {
		return realmhook.Errorf(realmhook.EINVALID, "sharedSecret is required")
	} else if len(b.SharedSecret) > 1024 {
		return realmhook.Errorf(realmhook.EINVALID, "sharedSecret is longer than 1024 bytes")
	}
	if u, err := url.Parse(b.BaseURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return realmhook.Errorf(realmhook.EINVALID, "baseUrl %q is not an absolute http(s) URL", b.BaseURL)
	}
	return nil
}

// verifyInstall checks a signed (RS256) install or uninstall and returns its body.
func (s *Server) verifyInstall(r *http.Request, called *realms.Realm, eventType string) (*installBody, error) {
	id, err := s.ident.Authenticate(r, called, installPolicy)
	if err != nil {
		return nil, err
	}
	var body installBody
	if err := decodeJSON(r, &body); err != nil {
		return nil, err
	}
	if err := body.validate(s.opts.AppKey, eventType); err != nil {
		return nil, err
	}
	if err := s.ident.RequireIssuer(r, id, body.ClientKey); err != nil {
		return nil, err
	}
	return &body, nil
}

// installed records the tenant in the realm whose base URL the install came
// to: that realm becomes the tenant's pinned realm.
func (s *Server) installed(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	called, err := s.calledRealm(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.verifyInstall(r, called, "installed")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	noteTenant(r, body.ClientKey, called.Key)
	ctx := r.Context()

	home, err := s.homeOf(r, body.ClientKey)
	switch {
	case err != nil:
		s.writeError(w, r, err)
		return
	case home != "" && home != called.Key:
		s.writeError(w, r, realmhook.Errorf(realmhook.ECONFLICT,
			"tenant %q is pinned to realm %s; one tenant lives in one realm, so it cannot be installed in %s", body.ClientKey, home, called.Key).
			With("pinnedRealm", home))
		return
	}

	now := time.Now().UTC()
	reinstall := true
	// A re-install (upgrade, secret rotation, site rename) is announced as
	// installed too, as the host sends it.
	installed := s.event(realmhook.EventInstalled, body.ClientKey, body.BaseURL, called.Key, now)
	_, err = called.Store.UpdateTenant(ctx, body.ClientKey, func(t *realmhook.Tenant) error {
		if err := installableOver(t); err != nil {
			return err
		}
		body.applyTo(t, now)
		return nil
	}, installed...)
	if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
		reinstall = false
		t := &realmhook.Tenant{InstalledAt: now}
		body.applyTo(t, now)
		err = called.Store.PutTenant(ctx, t, installed...)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log(r).Info("tenant installed", slog.String("tenant", body.ClientKey), slog.String("realm", called.Key), slog.Bool("reinstall", reinstall))
	w.WriteHeader(http.StatusNoContent)
}

// homeOf is the realm holding a tenant whose signed install verified: in a
// realm served here, else (the regional shape) in one another process
// serves; "" when none.
func (s *Server) homeOf(r *http.Request, clientKey string) (string, error) {
	home, _, err := s.opts.Realms.Locate(r.Context(), clientKey)
	switch {
	case err == nil:
		return home.Key, nil
	case realmhook.ErrorCode(err) != realmhook.ENOTFOUND:
		return "", err
	case s.opts.Remote == nil || identity.IsLocalOnly(r.Context()):
		return "", nil
	}
	return s.opts.Remote.Find(r.Context(), clientKey)
}

// applyTo writes a verified install into the tenant record: a re-install
// replaces the secret and the site's URLs and makes the tenant active here.
func (b *installBody) applyTo(t *realmhook.Tenant, now time.Time) {
	t.ClientKey = b.ClientKey
	t.SharedSecret = b.SharedSecret
	t.BaseURL = b.BaseURL
	t.DisplayURL = b.DisplayURL
	t.ProductType = b.ProductType
	t.Description = b.Description
	t.ServiceEntitlementNumber = b.ServiceEntitlementNumber
	t.InstallationID = b.InstallationID
	t.OAuthClientID = b.OAuthClientID
	t.PluginsVersion = b.PluginsVersion
	t.AppKey = b.Key
	t.State = realmhook.TenantActive
	t.UpdatedAt = now
}

// installableOver refuses an install over a record that a migration owns.
func installableOver(t *realmhook.Tenant) error {
	switch {
	case t.Frozen():
		return realmhook.Errorf(realmhook.EMIGRATING, "tenant %q is being migrated; install again after the migration ends", t.ClientKey)
	case t.MovedAway():
		return realmhook.Errorf(realmhook.ECONFLICT, "tenant %q was migrated to realm %s and is pinned there", t.ClientKey, t.MovedTo).
			With("pinnedRealm", t.MovedTo)
	case t.State == realmhook.TenantIncoming:
		return realmhook.Errorf(realmhook.ECONFLICT, "tenant %q is being migrated into this realm; install again after the migration ends", t.ClientKey)
	}
	return nil
}

// uninstalled marks the tenant uninstalled; its data stays, so that a
// re-install finds it. Repeating it, or uninstalling an unknown tenant, is a no-op.
func (s *Server) uninstalled(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	called, err := s.calledRealm(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.verifyInstall(r, called, "uninstalled")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	noteTenant(r, body.ClientKey, called.Key)
	ctx := r.Context()
	now := time.Now().UTC()
	_, err = called.Store.UpdateTenant(ctx, body.ClientKey, func(t *realmhook.Tenant) error {
		if t.State != realmhook.TenantActive {
			return errNotActiveHere
		}
		if t.Frozen() {
			return realmhook.Errorf(realmhook.EMIGRATING, "tenant %q is being migrated; uninstall after the migration ends", t.ClientKey)
		}
		t.State = realmhook.TenantUninstalled
		t.Enabled = false
		t.UpdatedAt = now
		return nil
	}, s.event(realmhook.EventUninstalled, body.ClientKey, body.BaseURL, called.Key, now)...)
	switch {
	case err == nil:
		s.log(r).Info("tenant uninstalled", slog.String("tenant", body.ClientKey), slog.String("realm", called.Key))
	case errors.Is(err, errNotActiveHere) || realmhook.ErrorCode(err) == realmhook.ENOTFOUND:
		home, lerr := s.homeOf(r, body.ClientKey)
		if realmhook.ErrorCode(lerr) == realmhook.EUNAVAILABLE {
			// The tenant may be in a realm that did not answer.
			s.writeError(w, r, lerr)
			return
		}
		if lerr == nil && home != "" && home != called.Key {
			s.writeError(w, r, s.ident.Misdirected(called, home, body.ClientKey))
			return
		}
	default:
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// errNotActiveHere stops an update of a tenant that this realm does not serve.
var errNotActiveHere = errors.New("tenant not active in this realm")

// enabled handles the enabled and disabled hooks (HS256).
func (s *Server) enabled(on bool) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		auth, err := s.authenticate(r, lifecyclePolicy)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		now := time.Now().UTC()
		typ := realmhook.EventDisabled
		if on {
			typ = realmhook.EventEnabled
		}
		_, err = auth.Home.Store.UpdateTenant(r.Context(), auth.Tenant.ClientKey, func(t *realmhook.Tenant) error {
			if t.Frozen() {
				return realmhook.Errorf(realmhook.EMIGRATING, "tenant %q is being migrated", t.ClientKey)
			}
			t.Enabled = on
			t.UpdatedAt = now
			return nil
		}, s.event(typ, auth.Tenant.ClientKey, auth.Tenant.BaseURL, auth.Home.Key, now)...)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// event is the lifecycle event typ of a tenant for the app of realm, to write
// with the change it announces; none when Options.Events is off.
func (s *Server) event(typ realmhook.EventType, clientKey, productBaseURL, realm string, at time.Time) []realmhook.Event {
	if !s.opts.Events {
		return nil
	}
	return []realmhook.Event{realmhook.NewEvent(typ, &realmhook.Tenant{ClientKey: clientKey, BaseURL: productBaseURL}, realm, at)}
}
