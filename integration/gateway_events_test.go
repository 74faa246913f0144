package integration

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/identitytoken"
)

// testIdentitySecret is gateway.identitySecret in these tests (32 bytes).
const testIdentitySecret = "realmhook-integration-identity!!"

// eventsApp is the events endpoint of an app behind the gateway: it records
// the events it takes and, while refusing, answers 503 to every delivery.
type eventsApp struct {
	*httptest.Server
	mu       sync.Mutex
	refusing bool
	refused  int
	events   []realmhook.Event
	bodies   []string
	tokens   []string
}

func newEventsApp(t *testing.T) *eventsApp {
	a := &eventsApp{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		defer a.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/realmhook/events" {
			http.Error(w, "not the events path", http.StatusNotFound)
			return
		}
		if a.refusing {
			a.refused++
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var e realmhook.Event
		if err := json.Unmarshal(b, &e); err != nil {
			http.Error(w, "not an event", http.StatusBadRequest)
			return
		}
		a.events = append(a.events, e)
		a.bodies = append(a.bodies, string(b))
		a.tokens = append(a.tokens, r.Header.Get(identitytoken.Header))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *eventsApp) refuse(on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refusing = on
}

func (a *eventsApp) refusedCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refused
}

func (a *eventsApp) received() ([]realmhook.Event, []string, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]realmhook.Event(nil), a.events...), append([]string(nil), a.bodies...), append([]string(nil), a.tokens...)
}

func gatewayYAML(upstream string) string {
	return fmt.Sprintf("gateway:\n  upstream: %s\n  identitySecret: %q\n", upstream, testIdentitySecret)
}

// TestGatewayEvents_SurviveACrash: an event written with its change is in
// the realm's database before the hook answers, so a process killed before
// the app took it delivers it after the restart.
func TestGatewayEvents_SurviveACrash(t *testing.T) {
	t.Parallel()
	ks := mustKeyServer(t)
	app := newEventsApp(t)
	app.refuse(true)
	srv := mustStartServer(t, serverConfig{KeysURL: ks.URL, Extra: gatewayYAML(app.URL)})
	ten := newTenant(t)
	mustInstall(t, srv, ks, ten, "EU")
	waitFor(t, 20*time.Second, "a delivery the app refuses", func() bool { return app.refusedCount() > 0 })
	if evs, _, _ := app.received(); len(evs) != 0 {
		t.Fatalf("the refusing app took %v", evs)
	}
	srv.kill()

	app.refuse(false)
	srv.restart()
	waitFor(t, 30*time.Second, "the installed event after the restart", func() bool { evs, _, _ := app.received(); return len(evs) > 0 })
	evs, bodies, tokens := app.received()
	e := evs[0]
	if e.Type != realmhook.EventInstalled || e.ClientKey != ten.ClientKey || e.Realm != "EU" ||
		e.ProductBaseURL != "https://"+ten.ClientKey+".atlassian.net" || e.ID == "" || e.At.IsZero() {
		t.Fatalf("event %+v", e)
	}
	if strings.Contains(bodies[0], ten.Secret) {
		t.Fatalf("the event carries the shared secret: %s", bodies[0])
	}
	claims, err := identitytoken.Verify(tokens[0], []byte(testIdentitySecret), time.Now(), 5*time.Second)
	if err != nil || claims.ClientKey() != ten.ClientKey || claims.Realm != "EU" {
		t.Fatalf("identity token of the delivery: %+v, %v", claims, err)
	}
	metrics := string(do(t, "GET", srv.Base+"/metrics", nil, nil).Body)
	for _, want := range []string{
		`realmhook_gateway_events_delivered_total{realm="EU",type="installed"} 1`,
		`realmhook_gateway_events_pending{realm="EU",type="installed"} 0`,
	} {
		waitFor(t, 10*time.Second, want, func() bool {
			metrics = string(do(t, "GET", srv.Base+"/metrics", nil, nil).Body)
			return strings.Contains(metrics, want)
		})
	}
	if !strings.Contains(metrics, `realmhook_gateway_event_failures_total{realm="EU",type="installed"}`) {
		t.Fatalf("no failures series in /metrics")
	}
}

// TestGatewayEvents_NoneWithoutGateway: without a gateway section nothing is
// written to any outbox.
func TestGatewayEvents_NoneWithoutGateway(t *testing.T) {
	t.Parallel()
	ks := mustKeyServer(t)
	srv := mustStartServer(t, serverConfig{KeysURL: ks.URL})
	ten := newTenant(t)
	mustInstall(t, srv, ks, ten, "EU")
	db, err := sql.Open("sqlite", filepath.Join(srv.Dir, "eu.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM realmhook_outbox`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("outbox rows without a gateway: %d, %v", n, err)
	}
	if strings.Contains(string(do(t, "GET", srv.Base+"/metrics", nil, nil).Body), "realmhook_gateway_") {
		t.Fatal("gateway metrics without a gateway")
	}
}
