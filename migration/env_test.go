package migration

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/sqlite"
	"github.com/realmhook/realmhook/store/storetest"
)

// notesTable is the app table the tests migrate besides the properties.
var notesTable = store.Table{Name: "notes", TenantColumn: "tenant", Key: []string{"id"}}

// t0 is the tests' "now"; windows are an hour from it.
var t0 = time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)

// clock is a settable time source shared by the stores and services of a test.
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
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is a set of realms, each a fresh SQLite file with the notes table.
type env struct {
	t      *testing.T
	clock  *clock
	stores map[string]store.Store
	dbs    map[string]*sql.DB
	paths  map[string]string
	cfg    Config
}

func newEnv(t *testing.T, realms ...string) *env {
	t.Helper()
	e := &env{
		t:      t,
		clock:  &clock{now: t0},
		stores: map[string]store.Store{},
		dbs:    map[string]*sql.DB{},
		paths:  map[string]string{},
		cfg: Config{
			Enabled: true, MaxConcurrent: 10, BatchRows: 3, CheckpointRows: 6,
			PurgeAfter: 24 * time.Hour, LeaseTTL: time.Minute, SweepInterval: time.Hour,
			Tables: []store.Table{notesTable},
		},
	}
	dir := t.TempDir()
	for _, r := range realms {
		path := filepath.Join(dir, r+".db")
		st, err := sqlite.Open(t.Context(), path, sqlite.Options{Now: e.clock.Now, Logger: quietLogger()})
		if err != nil {
			t.Fatalf("open %s: %v", r, err)
		}
		t.Cleanup(func() { st.Close() })
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatalf("open %s with database/sql: %v", r, err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.ExecContext(t.Context(), `CREATE TABLE notes(tenant TEXT NOT NULL, id INTEGER NOT NULL, body TEXT, PRIMARY KEY(tenant,id))`); err != nil {
			t.Fatalf("create notes in %s: %v", r, err)
		}
		e.stores[r], e.dbs[r], e.paths[r] = st, db, path
	}
	return e
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// service returns a Service over every realm of e; wrap (optional) decorates
// each realm's LocalPeer.
func (e *env) service(cfg Config, wrap func(realm string, p Peer) Peer) *Service {
	peers := map[string]Peer{}
	for r, st := range e.stores {
		peers[r] = LocalPeerWith(st, PeerOptions{Events: cfg.Events, Now: e.clock.Now})
		if wrap != nil {
			peers[r] = wrap(r, peers[r])
		}
	}
	s := New(cfg, e.stores, peers, Options{Logger: quietLogger(), Now: e.clock.Now})
	e.t.Cleanup(s.Close)
	if err := s.CheckSchema(e.t.Context()); err != nil {
		e.t.Fatalf("CheckSchema: %v", err)
	}
	return s
}

// replica returns a Service serving only realm, on a store of its own
// over realm's database file: another replica of the realm, as a process of
// the regional shape would be.
func (e *env) replica(cfg Config, realm string) *Service {
	e.t.Helper()
	st, err := sqlite.Open(e.t.Context(), e.paths[realm], sqlite.Options{Now: e.clock.Now, Logger: quietLogger()})
	if err != nil {
		e.t.Fatalf("open %s again: %v", realm, err)
	}
	e.t.Cleanup(func() { st.Close() })
	peers := map[string]Peer{}
	for r, other := range e.stores {
		peers[r] = LocalPeer(other)
	}
	s := New(cfg, map[string]store.Store{realm: st}, peers, Options{Logger: quietLogger(), Now: e.clock.Now})
	e.t.Cleanup(s.Close)
	return s
}

// run runs s.Run until the returned stop is called (or the test ends); stop
// waits for Run to return.
func (e *env) run(s *Service) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("Run: %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// mustTenant stores an active tenant with props properties and notes notes.
func (e *env) mustTenant(realm, clientKey string, props, notes int) *realmhook.Tenant {
	e.t.Helper()
	ctx := e.t.Context()
	st := e.stores[realm]
	tn := &realmhook.Tenant{
		ClientKey: clientKey, SharedSecret: "s3cret-" + clientKey, BaseURL: "https://" + clientKey + ".atlassian.net",
		ProductType: "jira", AppKey: "com.example.app", State: realmhook.TenantActive, Enabled: true,
		InstalledAt: t0, UpdatedAt: t0,
	}
	if err := st.PutTenant(ctx, tn); err != nil {
		e.t.Fatalf("PutTenant: %v", err)
	}
	for i := range props {
		if _, err := st.PutProperty(ctx, clientKey, fmt.Sprintf("p%04d", i), []byte(fmt.Sprintf(`{"n":%d,"realm":%q}`, i, realm))); err != nil {
			e.t.Fatalf("PutProperty: %v", err)
		}
	}
	var rows []store.Row
	for i := range notes {
		rows = append(rows, store.Row{clientKey, int64(i + 1), fmt.Sprintf("note %d of %s in %s", i+1, clientKey, realm)})
	}
	if len(rows) > 0 {
		if err := storetest.WriteRows(ctx, st, notesTable, []string{"tenant", "id", "body"}, rows); err != nil {
			e.t.Fatalf("WriteRows: %v", err)
		}
	}
	return tn
}

// sums returns the tenant's checksum of every migrated table in realm.
func (e *env) sums(realm, clientKey string) map[string]Checksum {
	e.t.Helper()
	out := map[string]Checksum{}
	st := e.stores[realm]
	for _, tb := range []store.Table{store.PropertiesTable, notesTable} {
		cols, err := st.Columns(e.t.Context(), tb.Name)
		if err != nil {
			e.t.Fatalf("Columns %s: %v", tb.Name, err)
		}
		c, err := TableChecksum(e.t.Context(), st, tb, cols, clientKey)
		if err != nil {
			e.t.Fatalf("checksum: %v", err)
		}
		out[tb.Name] = c
	}
	return out
}

// rowCount counts the tenant's rows of every migrated table in realm.
func (e *env) rowCount(realm, clientKey string) int64 {
	e.t.Helper()
	var n int64
	for _, c := range e.sums(realm, clientKey) {
		n += c.Rows
	}
	return n
}

func (e *env) mustTenantState(realm, clientKey string) *realmhook.Tenant {
	e.t.Helper()
	tn, err := e.stores[realm].GetTenant(e.t.Context(), clientKey)
	if err != nil {
		e.t.Fatalf("GetTenant %s in %s: %v", clientKey, realm, err)
	}
	return tn
}

func (e *env) mustNoTenant(realm, clientKey string) {
	e.t.Helper()
	if tn, err := e.stores[realm].GetTenant(e.t.Context(), clientKey); realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
		e.t.Fatalf("tenant %s in %s = %+v, %v; want not found", clientKey, realm, tn, err)
	}
}

// req is a schedule/start body with an hour's window from the clock's now.
func (e *env) req(id, location string) Request {
	now := e.clock.Now()
	return Request{MigrationID: id, Location: location, StartTime: now, EndTime: now.Add(time.Hour)}
}

// mustWait waits (up to 20s) for the migration to reach one of states.
func mustWait(t *testing.T, s *Service, realm, clientKey, id string, states ...realmhook.MigrationState) *realmhook.Migration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	m, err := s.Wait(ctx, realm, clientKey, id, states...)
	if err != nil {
		t.Fatalf("wait for %v: %v (migration %+v)", states, err, m)
	}
	return m
}

// mustEventually polls cond until it holds or 20s pass.
func mustEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// must takes a call's two results and fails the test on its error:
// must(s.Status(ctx, ...))(t).
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v (code %s)", err, ResponseCode(err))
		}
		return v
	}
}

// mustResponse fails unless err carries the host-facing response code.
func mustResponse(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if got := ResponseCode(err); got != code {
		t.Fatalf("ResponseCode(%v) = %s, want %s", err, got, code)
	}
}

// gatedPeer lets `pass` batches through, then blocks the write of every
// further batch (and, with holdChecksum, every checksum) until ctx ends or
// release is closed, when it fails like a lost connection. The block comes
// inside the write, whose transaction then rolls back, or, with afterCommit,
// once the write holding the batch has committed: a crash between a commit
// and its checkpoint.
type gatedPeer struct {
	Peer
	pass         int
	afterCommit  bool
	holdChecksum bool

	mu      sync.Mutex
	batches int
	once    sync.Once
	blocked chan struct{}
	release chan struct{}
}

func newGatedPeer(p Peer, pass int) *gatedPeer {
	return &gatedPeer{Peer: p, pass: pass, blocked: make(chan struct{}), release: make(chan struct{})}
}

func (p *gatedPeer) hold(ctx context.Context) error {
	p.once.Do(func() { close(p.blocked) })
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-p.release:
		return fmt.Errorf("%w: connection lost", realmhook.ErrUnavailable)
	}
}

func (p *gatedPeer) CopyRows(ctx context.Context, clientKey, id string, t store.Table, cols []string, next func() ([]store.Row, error)) (int64, error) {
	gated := false
	counted := func() ([]store.Row, error) {
		rows, err := next()
		if err != nil || len(rows) == 0 {
			return rows, err
		}
		p.mu.Lock()
		p.batches++
		n := p.batches
		p.mu.Unlock()
		if n > p.pass {
			if !p.afterCommit {
				return nil, p.hold(ctx)
			}
			gated = true
		}
		return rows, nil
	}
	n, err := p.Peer.CopyRows(ctx, clientKey, id, t, cols, counted)
	if err == nil && gated {
		return 0, p.hold(ctx)
	}
	return n, err
}

func (p *gatedPeer) Checksum(ctx context.Context, clientKey string, t store.Table, cols []string) (Checksum, error) {
	if p.holdChecksum {
		return Checksum{}, p.hold(ctx)
	}
	return p.Peer.Checksum(ctx, clientKey, t, cols)
}

func mustBlocked(t *testing.T, p *gatedPeer) {
	t.Helper()
	select {
	case <-p.blocked:
	case <-time.After(20 * time.Second):
		t.Fatal("the copy never reached the gate")
	}
}
