package transfer_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/internalauth"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/sqlite"
	"github.com/realmhook/realmhook/transfer"
)

var secret = []byte("transfer test secret, long enough")

var notes = store.Table{Name: "notes", TenantColumn: "tenant", Key: []string{"id"}}

const (
	tenantKey = "tenant-1"
	migID     = "m-1"
)

// rig is a target realm EU on SQLite behind a real transfer server, and the
// client of it, with the tenant prepared as incoming for migID.
type rig struct {
	st     *sqlite.Store
	srv    *httptest.Server
	client *transfer.Client
	// failNext makes the next n requests fail with 503 before they reach
	// the transfer server (a proxy or a restarting target).
	failNext atomic.Int32
	// requests counts the requests that arrived.
	requests atomic.Int32
}

func newRig(t *testing.T) *rig {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "EU.db"), sqlite.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := st.SQLDB()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE notes (tenant TEXT NOT NULL, id INTEGER NOT NULL, body TEXT, PRIMARY KEY (tenant, id))`); err != nil {
		t.Fatal(err)
	}
	r := &rig{st: st}
	path, h := transfer.NewServer(map[string]store.Store{"EU": st}, migration.PeerOptions{}).Handler(&internalauth.Verifier{Secret: secret, Realms: []string{"EU"}})
	mux := http.NewServeMux()
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		if r.failNext.Add(-1) >= 0 {
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, req)
	}))
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	r.client = transfer.NewClient("EU", r.srv.URL, r.srv.Client(), internalauth.Signer{Secret: secret, Issuer: "US"})
	r.client.RetryFor = 5 * time.Second
	tn := &realmhook.Tenant{ClientKey: tenantKey, SharedSecret: "s", State: realmhook.TenantActive}
	if err := r.client.PrepareIncoming(migration.WithFence(t.Context(), 1), tn, migID); err != nil {
		t.Fatal(err)
	}
	return r
}

func noteRows(from, n int) []store.Row {
	out := make([]store.Row, n)
	for i := range out {
		out[i] = store.Row{tenantKey, int64(from + i), "note"}
	}
	return out
}

func once(rs []store.Row) func() ([]store.Row, error) {
	return func() ([]store.Row, error) {
		b := rs
		rs = nil
		return b, nil
	}
}

func (r *rig) count(t *testing.T) int64 {
	t.Helper()
	n, err := r.st.CountRows(t.Context(), notes, tenantKey)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var cols = []string{"tenant", "id", "body"}

// TestFencing: once the target has seen a write with a migration's token,
// a write with a lower one (a replica whose lease expired) is refused with
// migration.ErrFenced and lands nothing; equal and higher ones go through.
func TestFencing(t *testing.T) {
	r := newRig(t)
	newer := migration.WithFence(t.Context(), 20)
	stale := migration.WithFence(t.Context(), 10)
	if _, err := r.client.CopyRows(newer, tenantKey, migID, notes, cols, once(noteRows(1, 5))); err != nil {
		t.Fatal(err)
	}
	_, err := r.client.CopyRows(stale, tenantKey, migID, notes, cols, once(noteRows(6, 5)))
	if !errors.Is(err, migration.ErrFenced) || realmhook.ErrorCode(err) != realmhook.ECONFLICT {
		t.Fatalf("stale CopyRows: %v, want ErrFenced (ECONFLICT)", err)
	}
	if _, err := r.client.TrimRows(stale, tenantKey, migID, notes, nil); !errors.Is(err, migration.ErrFenced) {
		t.Fatalf("stale TrimRows: %v, want ErrFenced", err)
	}
	if err := r.client.PrepareIncoming(stale, &realmhook.Tenant{ClientKey: tenantKey}, migID); !errors.Is(err, migration.ErrFenced) {
		t.Fatalf("stale PrepareIncoming: %v, want ErrFenced", err)
	}
	if got := r.count(t); got != 5 {
		t.Fatalf("%d rows, want the newer writer's 5 only", got)
	}
	if _, err := r.client.CopyRows(newer, tenantKey, migID, notes, cols, once(noteRows(6, 5))); err != nil {
		t.Fatalf("same token again: %v", err)
	}
	if _, err := r.client.CopyRows(t.Context(), tenantKey, migID, notes, cols, once(noteRows(11, 1))); realmhook.ErrorCode(err) != realmhook.EINVALID {
		t.Fatalf("write without a token: %v, want EINVALID", err)
	}
	// Another migration's tokens are its own.
	if _, err := r.client.TrimRows(stale, tenantKey, "m-2", notes, nil); errors.Is(err, migration.ErrFenced) {
		t.Fatalf("another migration's write was fenced by m-1's token: %v", err)
	}
}

// TestCopyRows_DroppedConnection: a connection cut mid-stream writes nothing
// and is EUNAVAILABLE, which the engine resumes from its checkpoint.
func TestCopyRows_DroppedConnection(t *testing.T) {
	r := newRig(t)
	ctx := migration.WithFence(t.Context(), 1)
	sent := 0
	_, err := r.client.CopyRows(ctx, tenantKey, migID, notes, cols, func() ([]store.Row, error) {
		sent++
		if sent == 3 {
			r.srv.CloseClientConnections()
		}
		if sent > 5 {
			return nil, nil
		}
		return noteRows(sent*100, 50), nil
	})
	if realmhook.ErrorCode(err) != realmhook.EUNAVAILABLE {
		t.Fatalf("CopyRows over a cut connection: %v, want EUNAVAILABLE", err)
	}
	if got := r.count(t); got != 0 {
		t.Fatalf("%d rows landed from a cut stream, want none", got)
	}
	// The resumed copy goes through.
	if n, err := r.client.CopyRows(ctx, tenantKey, migID, notes, cols, once(noteRows(1, 50))); err != nil || n != 50 {
		t.Fatalf("resumed CopyRows = %d, %v", n, err)
	}
}

// TestRetry: a call the target does not answer is retried with backoff,
// and succeeds once the target answers; one that never answers gives up
// EUNAVAILABLE after RetryFor.
func TestRetry(t *testing.T) {
	r := newRig(t)
	ctx := migration.WithFence(t.Context(), 1)
	r.failNext.Store(3)
	if _, err := r.client.TrimRows(ctx, tenantKey, migID, notes, nil); err != nil {
		t.Fatalf("TrimRows after 3 refusals: %v", err)
	}
	if left := r.failNext.Load(); left >= 0 {
		t.Fatalf("%d refusals left: the call was not retried past them", left+1)
	}
	r.failNext.Store(1 << 30)
	r.client.RetryFor = 300 * time.Millisecond
	if err := r.client.CheckTables(ctx, []store.Table{notes}); realmhook.ErrorCode(err) != realmhook.EUNAVAILABLE {
		t.Fatalf("CheckTables against a target that never answers: %v, want EUNAVAILABLE", err)
	}
}

// TestErrors_KeepTheirCode: the target's refusals reach the source with
// their realmhook code, and a refused token is EUNAUTHORIZED, not retried.
func TestErrors_KeepTheirCode(t *testing.T) {
	r := newRig(t)
	ctx := migration.WithFence(t.Context(), 1)
	if err := r.client.CheckTables(ctx, []store.Table{{Name: "missing", TenantColumn: "tenant", Key: []string{"id"}}}); realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
		t.Fatalf("missing table: %v, want ENOTFOUND", err)
	}
	wrong := transfer.NewClient("EU", r.srv.URL, r.srv.Client(), internalauth.Signer{Secret: []byte("not the shared secret at all"), Issuer: "US"})
	before := r.requests.Load()
	if err := wrong.CheckTables(ctx, []store.Table{notes}); realmhook.ErrorCode(err) != realmhook.EUNAUTHORIZED {
		t.Fatalf("wrong secret: %v, want EUNAUTHORIZED", err)
	}
	if n := r.requests.Load() - before; n != 1 {
		t.Fatalf("a refused token was sent %d times, want once (no retry)", n)
	}
	// A row the target cannot take keeps its table, for the host's message.
	_, err := r.client.CopyRows(ctx, tenantKey, migID, notes, []string{"tenant", "id", "nope"}, once(noteRows(1, 1)))
	if err == nil {
		t.Fatal("CopyRows into a missing column succeeded")
	}
}
