package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/forgefit"
	"github.com/realmhook/realmhook/realms"
)

// ReinstallWindow is how long after an uninstall a new installation on the
// same site (cloud id) is mapped back to the uninstalled tenant, its realm
// and its data: Atlassian's realm persistence for a re-install.
const ReinstallWindow = 30 * 24 * time.Hour

// forge verifies a Forge Invocation Token and finds the installation's
// tenant under the route's policy. A PinForge route pins an installation
// it has never seen to the realm it was called on; other routes answer an
// unknown installation as an unknown tenant.
func (l *Layer) forge(r *http.Request, called *realms.Realm, p Policy) (*Identity, error) {
	token, err := forgefit.TokenFromRequest(r)
	if err != nil {
		return nil, l.Reject(r, err)
	}
	c, err := l.opts.Forge.Verify(r.Context(), token)
	if err != nil {
		return nil, l.Reject(r, err)
	}
	id := &Identity{Kind: ForgeFIT, Called: called, Forge: c}
	if p.Kind == ForgeFIT {
		// A lifecycle event: its handler decides what the installation is.
		return id, nil
	}
	var home *realms.Realm
	var t *realmhook.Tenant
	if p.PinForge {
		home, t, err = l.PinForge(r.Context(), called, c.App.InstallationID, c.CloudID())
	} else {
		home, t, err = l.FindForge(r.Context(), c.App.InstallationID, p.Lookup)
		if realmhook.ErrorCode(err) == realmhook.EUNAVAILABLE && p.LastSeen && l.opts.LastSeen != nil {
			if key, ok := l.forgeKeys.Load(forgefit.InstallationID(c.App.InstallationID)); ok {
				if sh, st, ok := l.opts.LastSeen(key.(string)); ok {
					home, t, err, id.Stale = sh, st, nil, true
				}
			}
		}
	}
	switch {
	case realmhook.ErrorCode(err) == realmhook.ENOTFOUND:
		l.rejected(ReasonUnknownTenant)
		return nil, realmhook.Errorf(realmhook.EUNAUTHORIZED, unauthorizedMessage)
	case err != nil:
		return nil, err
	}
	if p.Realm == PinnedRealm && home.Key != called.Key {
		return nil, l.Misdirected(called, home.Key, t.ClientKey)
	}
	id.ClientKey, id.Tenant, id.Home = t.ClientKey, t, home
	return id, nil
}

// FindForge returns the realm and the active record of the tenant an
// installation (bare id or ARI) belongs to: its own Forge tenant, or the
// Connect tenant whose install named the same installation (a
// Connect-on-Forge app: one tenant, reached by both protocols). ENOTFOUND
// when no served realm has it. Cached lookups remember which tenant an
// installation is and read the record from the tenant cache.
func (l *Layer) FindForge(ctx context.Context, installationID string, lookup Lookup) (*realms.Realm, *realmhook.Tenant, error) {
	inst := forgefit.InstallationID(installationID)
	if lookup == Cached {
		if key, ok := l.forgeKeys.Load(inst); ok {
			home, t, err := l.opts.Realms.LocateCached(ctx, key.(string))
			if err == nil && forgefit.InstallationID(t.InstallationID) == inst {
				return home, t, nil
			}
		}
	}
	for _, realm := range l.opts.Realms.Served() {
		keys, err := realm.Store.FindTenants(ctx, forgefit.InstallationForms(inst), "")
		if err != nil {
			return nil, nil, fmt.Errorf("find installation in realm %s: %w", realm.Key, err)
		}
		for _, key := range keys {
			home, t, err := l.opts.Realms.Locate(ctx, key)
			if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
				continue
			} else if err != nil {
				return nil, nil, err
			}
			if forgefit.InstallationID(t.InstallationID) == inst {
				l.forgeKeys.Store(inst, t.ClientKey)
				return home, t, nil
			}
		}
	}
	return nil, nil, realmhook.Errorf(realmhook.ENOTFOUND, "no tenant of installation %q in the realms this process serves", inst)
}

// PinForge returns the tenant of a verified installation, making one if
// it has none: a new installation on a site (cloudID) whose tenant is
// active, or was uninstalled less than ReinstallWindow ago, becomes that
// tenant again, in the realm that holds it and with its data; any other
// new installation becomes a tenant of its own pinned to called, the realm
// whose base URL received its first verified event or invocation.
func (l *Layer) PinForge(ctx context.Context, called *realms.Realm, installationID, cloudID string) (*realms.Realm, *realmhook.Tenant, error) {
	inst := forgefit.InstallationID(installationID)
	home, t, err := l.FindForge(ctx, inst, Fresh)
	if err == nil {
		if cloudID != "" && t.CloudID == "" {
			t, err = home.Store.UpdateTenant(ctx, t.ClientKey, func(t *realmhook.Tenant) error {
				t.CloudID = cloudID
				return nil
			})
		}
		return home, t, err
	} else if realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
		return nil, nil, err
	}
	now := l.now()
	if prev, realm, err := l.previousInstallation(ctx, inst, cloudID, now); err != nil {
		return nil, nil, err
	} else if prev != nil {
		t, err := realm.Store.UpdateTenant(ctx, prev.ClientKey, func(t *realmhook.Tenant) error {
			if t.Frozen() {
				return realmhook.Errorf(realmhook.EMIGRATING, "tenant %q is being migrated; install again after the migration ends", t.ClientKey)
			}
			t.InstallationID, t.CloudID = inst, cloudID
			t.State, t.Enabled, t.UpdatedAt = realmhook.TenantActive, true, now
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("re-install of tenant %s: %w", prev.ClientKey, err)
		}
		l.forgeKeys.Store(inst, t.ClientKey)
		return realm, t, nil
	}
	t = &realmhook.Tenant{ClientKey: inst, InstallationID: inst, CloudID: cloudID, State: realmhook.TenantActive,
		Enabled: true, InstalledAt: now, UpdatedAt: now}
	if err := called.Store.PutTenant(ctx, t); err != nil {
		return nil, nil, fmt.Errorf("pin installation %s to realm %s: %w", inst, called.Key, err)
	}
	l.forgeKeys.Store(inst, t.ClientKey)
	return called, t, nil
}

// previousInstallation finds the tenant a new installation on cloudID
// re-installs: of the site's records that are active, or uninstalled
// within ReinstallWindow, the one updated last.
func (l *Layer) previousInstallation(ctx context.Context, inst, cloudID string, now time.Time) (*realmhook.Tenant, *realms.Realm, error) {
	if cloudID == "" {
		return nil, nil, nil
	}
	type candidate struct {
		t     *realmhook.Tenant
		realm *realms.Realm
	}
	var found []candidate
	for _, realm := range l.opts.Realms.Served() {
		keys, err := realm.Store.FindTenants(ctx, nil, cloudID)
		if err != nil {
			return nil, nil, fmt.Errorf("find site %s in realm %s: %w", cloudID, realm.Key, err)
		}
		for _, key := range keys {
			t, err := realm.Store.GetTenant(ctx, key)
			if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
				continue
			} else if err != nil {
				return nil, nil, err
			}
			if t.CloudID != cloudID || forgefit.InstallationID(t.InstallationID) == inst {
				continue
			}
			if t.State == realmhook.TenantActive || (t.State == realmhook.TenantUninstalled && now.Sub(t.UpdatedAt) < ReinstallWindow) {
				found = append(found, candidate{t, realm})
			}
		}
	}
	if len(found) == 0 {
		return nil, nil, nil
	}
	sort.Slice(found, func(i, j int) bool { return found[i].t.UpdatedAt.After(found[j].t.UpdatedAt) })
	return found[0].t, found[0].realm, nil
}

// UninstallForge marks an installation's tenant uninstalled in the realm
// that holds it; its data stays for a re-install. No tenant is no error.
func (l *Layer) UninstallForge(ctx context.Context, installationID string) (*realms.Realm, *realmhook.Tenant, error) {
	home, t, err := l.FindForge(ctx, installationID, Fresh)
	if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	t, err = home.Store.UpdateTenant(ctx, t.ClientKey, func(t *realmhook.Tenant) error {
		if t.Frozen() {
			return realmhook.Errorf(realmhook.EMIGRATING, "tenant %q is being migrated; uninstall after the migration ends", t.ClientKey)
		}
		if t.State != realmhook.TenantActive {
			return errNotActive
		}
		t.State, t.Enabled, t.UpdatedAt = realmhook.TenantUninstalled, false, l.now()
		return nil
	})
	if errors.Is(err, errNotActive) {
		return nil, nil, nil
	}
	return home, t, err
}

var errNotActive = errors.New("tenant not active")

func (l *Layer) now() time.Time {
	if l.opts.Now != nil {
		return l.opts.Now().UTC()
	}
	return time.Now().UTC()
}
