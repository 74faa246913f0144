package hooks

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/forgefit"
	"github.com/realmhook/realmhook/identity"
)

// Forge serves the app as a Forge remote too: Forge Invocation Tokens are
// accepted on every route a Connect JWT is, the migration hooks also answer
// under MigrationPath, and lifecycle events arrive at EventsPath.
type Forge struct {
	Verifier *forgefit.Verifier
	// MigrationPath is the migration:dataResidency module's path.
	MigrationPath string
	// EventsPath is the remote endpoint of the lifecycle event trigger.
	EventsPath string
	// Window is the module's maxMigrationDurationHours: a Forge /schedule or
	// /start without an endTime ends that long after its startTime.
	Window time.Duration
}

// The Forge lifecycle events an app's trigger can deliver to its remote.
const (
	ForgeInstalled   = "avi:forge:installed:app"
	ForgeUpgraded    = "avi:forge:upgraded:app"
	ForgeUninstalled = "avi:forge:uninstalled:app"
)

// forgeEventPolicy: a lifecycle event carries a FIT; its handler decides
// what the installation becomes.
var forgeEventPolicy = identity.Policy{Kind: identity.ForgeFIT}

// forgeEvent is a lifecycle event's payload (Atlassian's "Lifecycle
// events" reference) with the event's name.
type forgeEvent struct {
	EventType string `json:"eventType"`
	// ID is the installation's id.
	ID  string `json:"id"`
	App *struct {
		ID      string `json:"id"`
		Version string `json:"version"`
	} `json:"app"`
	// Context is the site's ARI (ari:cloud:jira::site/<cloudId>).
	Context json.RawMessage `json:"context"`
}

var cloudIDPattern = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// forgeEvents answers a lifecycle event: installed and upgraded pin the
// installation to the realm called (or find the tenant it re-installs),
// uninstalled marks its tenant uninstalled and keeps its data. Other event
// types are acknowledged and ignored: Forge retries any non-2xx.
func (s *Server) forgeEvents(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	called, err := s.calledRealm(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := s.ident.Authenticate(r, called, forgeEventPolicy)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var ev forgeEvent
	if err := decodeJSON(r, &ev); err != nil {
		s.writeError(w, r, err)
		return
	}
	inst := forgefit.InstallationID(id.Forge.App.InstallationID)
	if ev.ID != "" && forgefit.InstallationID(ev.ID) != inst {
		s.writeError(w, r, realmhook.Errorf(realmhook.EINVALID, "id %q is not the installation the token was issued for", ev.ID))
		return
	}
	cloud := id.Forge.CloudID()
	if cloud == "" && len(ev.Context) > 0 {
		var site string
		if json.Unmarshal(ev.Context, &site) == nil {
			cloud = forgefit.SiteCloudID(site)
		}
	}
	if cloud != "" && !cloudIDPattern.MatchString(cloud) {
		s.writeError(w, r, realmhook.Errorf(realmhook.EINVALID, "cloudId %q is not a cloud id", cloud))
		return
	}
	ctx := r.Context()
	log := s.log(r).With(slog.String("installation", inst), slog.String("event", ev.EventType))
	switch ev.EventType {
	case ForgeInstalled, ForgeUpgraded:
		home, t, err := s.ident.PinForge(ctx, called, inst, cloud)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		noteTenant(r, t.ClientKey, home.Key)
		if home.Key != called.Key {
			s.writeError(w, r, realmhook.Errorf(realmhook.ECONFLICT,
				"tenant %q is pinned to realm %s; one tenant lives in one realm, so it cannot be installed in %s", t.ClientKey, home.Key, called.Key).
				With("pinnedRealm", home.Key))
			return
		}
		log.Info("forge installation pinned", slog.String("tenant", t.ClientKey), slog.String("realm", home.Key))
	case ForgeUninstalled:
		home, t, err := s.ident.FindForge(ctx, inst, identity.Fresh)
		if err == nil && home.Key != called.Key {
			s.writeError(w, r, s.ident.Misdirected(called, home.Key, t.ClientKey))
			return
		} else if err != nil && realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
			s.writeError(w, r, err)
			return
		}
		if _, _, err := s.ident.UninstallForge(ctx, inst); err != nil {
			s.writeError(w, r, err)
			return
		}
		log.Info("forge installation uninstalled", slog.String("realm", called.Key))
	default:
		log.Info("forge event ignored")
	}
	w.WriteHeader(http.StatusNoContent)
}

// forgeWindow gives a Forge /schedule or /start without an endTime the
// module's window; an endTime the host sends is kept.
func (s *Server) forgeWindow(auth *identity.Identity, start, end time.Time) time.Time {
	if auth.Kind != identity.ForgeFIT || s.opts.Forge == nil || !end.IsZero() || start.IsZero() {
		return end
	}
	return start.Add(s.opts.Forge.Window)
}
