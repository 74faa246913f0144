package hooks

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
)

// outbox returns the types of realm's outbox events, oldest first, and
// empties it.
func (e *env) outbox(realm string) string {
	e.t.Helper()
	r, _ := e.realms.Get(realm)
	var got []string
	for {
		evs, err := r.Store.NextEvents(e.t.Context(), time.Now().Add(time.Hour), 10)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(evs) == 0 {
			return strings.Join(got, " ")
		}
		for _, ev := range evs {
			if ev.Realm != realm || ev.ProductBaseURL != "https://site.atlassian.net" || ev.ID == "" || ev.At.IsZero() {
				e.t.Errorf("event %+v", ev)
			}
			got = append(got, ev.ClientKey+":"+string(ev.Type))
			if err := r.Store.DeleteEvent(e.t.Context(), ev.Seq); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

func TestServer_LifecycleEvents(t *testing.T) {
	e := mustEnv(t, nil, func(o *Options) { o.Events = true })
	mustReply(t, e.install("EU", "c1", "s", "installed"), http.StatusNoContent, "")
	mustReply(t, e.call("EU", "c1", "s", "POST", "/enabled", nil), http.StatusNoContent, "")
	mustReply(t, e.call("EU", "c1", "s", "POST", "/disabled", nil), http.StatusNoContent, "")
	mustReply(t, e.install("EU", "c1", "s2", "installed"), http.StatusNoContent, "") // a re-install
	mustReply(t, e.install("EU", "c1", "s2", "uninstalled"), http.StatusNoContent, "")
	if got, want := e.outbox("EU"), "c1:installed c1:enabled c1:disabled c1:installed c1:uninstalled"; got != want {
		t.Fatalf("EU outbox %q, want %q", got, want)
	}

	// A refused change announces nothing: a repeated uninstall, a hook to a
	// frozen tenant.
	mustReply(t, e.install("EU", "c1", "s2", "uninstalled"), http.StatusNoContent, "")
	mustReply(t, e.install("US", "c2", "s", "installed"), http.StatusNoContent, "")
	us, _ := e.realms.Get("US")
	if _, err := us.Store.UpdateTenant(t.Context(), "c2", func(tn *realmhook.Tenant) error { tn.MigrationID = "m1"; return nil }); err != nil {
		t.Fatal(err)
	}
	mustReply(t, e.call("US", "c2", "s", "POST", "/disabled", nil), http.StatusConflict, realmhook.EMIGRATING)
	if got := e.outbox("EU"); got != "" {
		t.Fatalf("EU outbox %q, want empty", got)
	}
	if got := e.outbox("US"); got != "c2:installed" {
		t.Fatalf("US outbox %q, want c2's install only", got)
	}
}

func TestServer_NoLifecycleEventsWithoutGateway(t *testing.T) {
	e := mustEnv(t, nil)
	mustReply(t, e.install("EU", "c1", "s", "installed"), http.StatusNoContent, "")
	mustReply(t, e.call("EU", "c1", "s", "POST", "/enabled", nil), http.StatusNoContent, "")
	if got := e.outbox("EU"); got != "" {
		t.Fatalf("outbox %q without the gateway, want empty", got)
	}
}
