package outbox_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/outbox"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/sqlite"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func mustStore(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "realm.db"), sqlite.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// app is an upstream's events endpoint that records what it receives and
// answers with the status fail returns (200 when fail is nil).
type app struct {
	mu       sync.Mutex
	received []realmhook.Event
	headers  []string
	bodies   []string
	fail     atomic.Value // func(realmhook.Event) int
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var e realmhook.Event
	if err := json.Unmarshal(b, &e); err != nil || r.Method != http.MethodPost || r.URL.Path != "/realmhook/events" {
		http.Error(w, "bad delivery", http.StatusBadRequest)
		return
	}
	if f, ok := a.fail.Load().(func(realmhook.Event) int); ok && f(e) != 0 {
		w.WriteHeader(f(e))
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.received = append(a.received, e)
	a.headers = append(a.headers, r.Header.Get("X-Realmhook-Identity"))
	a.bodies = append(a.bodies, string(b))
	w.WriteHeader(http.StatusNoContent)
}

func (a *app) ids() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.received {
		out = append(out, e.ID)
	}
	return out
}

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	st    store.Store
	app   *app
	clock *clock
	reg   *prometheus.Registry
	d     *outbox.Deliverer
	tg    outbox.Target
}

func newFixture(t *testing.T, owner string) *fixture {
	t.Helper()
	a := &app{}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	f := &fixture{st: mustStore(t), app: a, clock: &clock{now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}, reg: prometheus.NewRegistry()}
	f.tg = outbox.Target{Realm: "EU", Store: f.st, URL: srv.URL + "/realmhook/events"}
	f.d = f.deliverer(t, owner, f.reg)
	return f
}

func (f *fixture) deliverer(t *testing.T, owner string, reg prometheus.Registerer) *outbox.Deliverer {
	t.Helper()
	d, err := outbox.New(outbox.Options{
		Targets:        []outbox.Target{f.tg},
		Identity:       func(e realmhook.Event, now time.Time) (string, error) { return "identity-of-" + e.ClientKey, nil },
		IdentityHeader: "X-Realmhook-Identity",
		Owner:          owner,
		Now:            f.clock.Now,
		Registerer:     reg,
		Logger:         quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// mustEvent writes an event of tenant ck with a change of its record, as
// the lifecycle hooks do.
func (f *fixture) mustEvent(t *testing.T, ck string, typ realmhook.EventType) realmhook.Event {
	t.Helper()
	tn := &realmhook.Tenant{ClientKey: ck, SharedSecret: "the-shared-secret-" + ck, BaseURL: "https://" + ck + ".atlassian.net", State: realmhook.TenantActive}
	e := realmhook.NewEvent(typ, tn, "EU", f.clock.Now())
	if _, err := f.st.GetTenant(t.Context(), ck); err != nil {
		if err := f.st.PutTenant(t.Context(), tn, e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	if _, err := f.st.UpdateTenant(t.Context(), ck, func(*realmhook.Tenant) error { return nil }, e); err != nil {
		t.Fatal(err)
	}
	return e
}

// mustDrain runs passes until one says nothing more is due.
func (f *fixture) mustDrain(t *testing.T) {
	t.Helper()
	for i := 0; ; i++ {
		more, err := f.d.Pass(t.Context(), f.tg)
		if err != nil {
			t.Fatalf("Pass: %v", err)
		}
		if !more {
			return
		}
		if i > 100 {
			t.Fatal("Pass keeps saying more")
		}
	}
}

func TestDeliverer_InOrderPerTenantWithIdentity(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "r1")
	var want = map[string][]string{}
	for _, step := range []struct {
		ck  string
		typ realmhook.EventType
	}{{"a", realmhook.EventInstalled}, {"b", realmhook.EventInstalled}, {"a", realmhook.EventEnabled},
		{"a", realmhook.EventDisabled}, {"b", realmhook.EventUninstalled}} {
		e := f.mustEvent(t, step.ck, step.typ)
		want[step.ck] = append(want[step.ck], e.ID)
	}
	f.mustDrain(t)

	got := map[string][]string{}
	f.app.mu.Lock()
	for i, e := range f.app.received {
		got[e.ClientKey] = append(got[e.ClientKey], e.ID)
		if f.app.headers[i] != "identity-of-"+e.ClientKey {
			t.Errorf("event %s identity header %q", e.ID, f.app.headers[i])
		}
		if strings.Contains(f.app.bodies[i], "the-shared-secret") {
			t.Errorf("event body carries the shared secret: %s", f.app.bodies[i])
		}
		if e.Realm != "EU" || e.ProductBaseURL != "https://"+e.ClientKey+".atlassian.net" || e.At.IsZero() {
			t.Errorf("event %+v", e)
		}
	}
	f.app.mu.Unlock()
	for ck, ids := range want {
		if strings.Join(got[ck], ",") != strings.Join(ids, ",") {
			t.Errorf("tenant %s received %v, want %v in this order", ck, got[ck], ids)
		}
	}
	if n := metric(t, f.reg, "realmhook_gateway_events_delivered_total", "EU", "installed"); n != 2 {
		t.Errorf("delivered installed = %v, want 2", n)
	}
	if n := metric(t, f.reg, "realmhook_gateway_events_pending", "EU", "enabled"); n != 0 {
		t.Errorf("pending enabled = %v, want 0", n)
	}
	if counts, err := f.st.CountEvents(t.Context()); err != nil || len(counts) != 0 {
		t.Errorf("outbox after delivery: %v, %v; want empty", counts, err)
	}
}

func TestDeliverer_RetriesWithBackoffUntil2xx(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "r1")
	f.app.fail.Store(func(e realmhook.Event) int {
		if e.ClientKey == "stuck" {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	first := f.mustEvent(t, "stuck", realmhook.EventInstalled)
	second := f.mustEvent(t, "stuck", realmhook.EventEnabled)
	other := f.mustEvent(t, "fine", realmhook.EventInstalled)
	f.mustDrain(t)
	// The stuck tenant holds up only itself.
	if got := f.app.ids(); strings.Join(got, ",") != other.ID {
		t.Fatalf("received %v, want only %s", got, other.ID)
	}
	failures := func() float64 { return metric(t, f.reg, "realmhook_gateway_event_failures_total", "EU", "installed") }
	if n := failures(); n != 1 {
		t.Fatalf("failures = %v, want 1", n)
	}
	if n := metric(t, f.reg, "realmhook_gateway_events_pending", "EU", "installed"); n != 1 {
		t.Errorf("pending installed = %v, want 1", n)
	}
	// Not retried before its backoff (1 s, then 2 s) runs out.
	f.clock.Advance(999 * time.Millisecond)
	f.mustDrain(t)
	if n := failures(); n != 1 {
		t.Fatalf("retried before the backoff: failures = %v", n)
	}
	f.clock.Advance(time.Millisecond)
	f.mustDrain(t)
	if n := failures(); n != 2 {
		t.Fatalf("not retried after the backoff: failures = %v", n)
	}
	f.clock.Advance(1999 * time.Millisecond)
	f.mustDrain(t)
	if n := failures(); n != 2 {
		t.Fatalf("second backoff not doubled: failures = %v", n)
	}
	evs, err := f.st.NextEvents(t.Context(), f.clock.Now().Add(time.Hour), 10)
	if err != nil || len(evs) != 1 || evs[0].Attempts != 2 || !strings.Contains(evs[0].LastError, "503") {
		t.Fatalf("queued after two failures: %+v, %v", evs, err)
	}

	f.app.fail.Store(func(realmhook.Event) int { return 0 })
	f.clock.Advance(time.Millisecond)
	f.mustDrain(t)
	if got := f.app.ids(); strings.Join(got, ",") != strings.Join([]string{other.ID, first.ID, second.ID}, ",") {
		t.Fatalf("received %v, want %s then the stuck tenant's %s, %s in order", got, other.ID, first.ID, second.ID)
	}
}

func TestDeliverer_OneReplicaPerRealm(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "r1")
	f.mustEvent(t, "a", realmhook.EventInstalled)
	f.mustDrain(t) // r1 takes the lease
	e := f.mustEvent(t, "a", realmhook.EventEnabled)
	other := f.deliverer(t, "r2", nil)
	if more, err := other.Pass(t.Context(), f.tg); err != nil || more {
		t.Fatalf("second replica's pass = %v, %v", more, err)
	}
	if got := f.app.ids(); len(got) != 1 {
		t.Fatalf("second replica delivered while the first holds the lease: %v", got)
	}
	f.mustDrain(t)
	if got := f.app.ids(); len(got) != 2 || got[1] != e.ID {
		t.Fatalf("received %v", got)
	}
}

func TestDeliverer_UnreachableAppIsRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "r1")
	f.tg.URL = "http://127.0.0.1:1/realmhook/events" // nothing listens on port 1
	d := f.deliverer(t, "r1", nil)
	f.mustEvent(t, "a", realmhook.EventInstalled)
	if _, err := d.Pass(t.Context(), f.tg); err != nil {
		t.Fatalf("Pass: %v", err)
	}
	evs, err := f.st.NextEvents(t.Context(), f.clock.Now().Add(time.Hour), 10)
	if err != nil || len(evs) != 1 || evs[0].Attempts != 1 || evs[0].LastError == "" {
		t.Fatalf("queued after a refused connection: %+v, %v", evs, err)
	}
}

func TestNew_RequiresIdentity(t *testing.T) {
	t.Parallel()
	if _, err := outbox.New(outbox.Options{}); err == nil {
		t.Fatal("no identity: no error")
	}
}

// metric returns the value of a vector metric's series by realm and type.
func metric(t *testing.T, reg *prometheus.Registry, name, realm, typ string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["realm"] == realm && labels["type"] == typ {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{realm=%q,type=%q}", name, realm, typ)
	return 0
}
