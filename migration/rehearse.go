package migration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// RehearsalState is where a rehearsal is.
type RehearsalState string

// Rehearsal states: running, then one of the other three.
const (
	RehearsalRunning RehearsalState = "running"
	// RehearsalPassed: copied and verified equal.
	RehearsalPassed RehearsalState = "passed"
	// RehearsalFailed: the copy or its verification failed (Detail says why).
	RehearsalFailed RehearsalState = "failed"
	// RehearsalCancelled: it yielded to a real migration of the tenant, or
	// the process is stopping.
	RehearsalCancelled RehearsalState = "cancelled"
)

// DefaultRehearsalWindow is the window a rehearsal is measured against when
// none is given: Forge's default migration window.
const DefaultRehearsalWindow = 90 * time.Minute

// keptRehearsals bounds how many ended rehearsals are remembered.
const keptRehearsals = 100

// Rehearsal is a dry run of a migration: the tenant copied into the target
// realm and verified exactly as a migration would, from one snapshot of the
// source and without freezing the tenant, then discarded. It lives in this
// process's memory only; it writes nothing in the source.
type Rehearsal struct {
	ID          string
	ClientKey   string
	SourceRealm string
	TargetRealm string
	State       RehearsalState
	// Window is the migration window it is measured against.
	Window    time.Duration
	Progress  realmhook.Progress
	StartedAt time.Time
	EndedAt   time.Time
	// Verified: the target's copy had the source's row counts and checksums.
	Verified bool
	// Detail is the verification's result or what ended the rehearsal.
	Detail string
}

// Duration is how long the copy and verification took (so far, while
// running).
func (r *Rehearsal) Duration(now time.Time) time.Duration {
	if r.EndedAt.IsZero() {
		return now.Sub(r.StartedAt)
	}
	return r.EndedAt.Sub(r.StartedAt)
}

// FitsWindow reports whether the rehearsal passed within its window.
func (r *Rehearsal) FitsWindow() bool {
	return r.State == RehearsalPassed && r.Duration(r.EndedAt) <= r.Window
}

// rehearsals is the Service's record of its rehearsals.
type rehearsals struct {
	mu      sync.Mutex
	byID    map[string]*rehearsalRun
	order   []string                 // ids, oldest first
	running map[string]*rehearsalRun // by client key
}

// rehearsalRun is one rehearsal and its job.
type rehearsalRun struct {
	mu     sync.Mutex
	r      Rehearsal
	cancel context.CancelCauseFunc
	done   chan struct{}
}

func (run *rehearsalRun) snapshot() *Rehearsal {
	run.mu.Lock()
	defer run.mu.Unlock()
	r := run.r
	return &r
}

func (run *rehearsalRun) update(fn func(*Rehearsal)) {
	run.mu.Lock()
	fn(&run.r)
	run.mu.Unlock()
}

// errYielded cancels a rehearsal when a real migration of its tenant
// begins.
var errYielded = errors.New("a real migration of the tenant began: the rehearsal yielded to it")

// RehearsalRequest says which tenant to rehearse moving where.
type RehearsalRequest struct {
	// Realm is where the tenant is active (a realm this process serves).
	Realm     string
	ClientKey string
	// Target is the realm to rehearse moving it to.
	Target string
	// Window is what the rehearsal is measured against (default
	// DefaultRehearsalWindow).
	Window time.Duration
}

// Rehearse starts a rehearsal in the background and returns it, running.
// It is refused (ECONFLICT) while the tenant is frozen, has an unfinished
// migration or another rehearsal, or is not active in req.Realm; and
// (EINVALID) for a target that is the source or not configured.
func (s *Service) Rehearse(ctx context.Context, req RehearsalRequest) (*Rehearsal, error) {
	st, err := s.servedStore(req.Realm)
	if err != nil {
		return nil, err
	}
	switch {
	case req.ClientKey == "":
		return nil, realmhook.Errorf(realmhook.EINVALID, "a client key is required")
	case req.Target == req.Realm:
		return nil, realmhook.Errorf(realmhook.EINVALID, "the target realm is the tenant's own realm %s", req.Realm)
	case req.Window < 0:
		return nil, realmhook.Errorf(realmhook.EINVALID, "window must not be negative, got %s", req.Window)
	}
	if req.Window == 0 {
		req.Window = DefaultRehearsalWindow
	}
	peer, ok := s.peers[req.Target]
	if !ok {
		return nil, realmhook.Errorf(realmhook.EINVALID, "target realm %s is not configured for migrations", req.Target)
	}
	id := "rehearsal-" + randomHex(8)
	runCtx, cancel := context.WithCancelCause(s.base)
	run := &rehearsalRun{
		r: Rehearsal{ID: id, ClientKey: req.ClientKey, SourceRealm: req.Realm, TargetRealm: req.Target,
			State: RehearsalRunning, Window: req.Window, StartedAt: s.now().UTC(),
			Progress: realmhook.Progress{TablesTotal: len(s.tables)}},
		cancel: cancel,
		done:   make(chan struct{}),
	}
	reh := &s.rehearsals
	reh.mu.Lock()
	if other := reh.running[req.ClientKey]; other != nil {
		reh.mu.Unlock()
		cancel(nil)
		return nil, realmhook.Errorf(realmhook.ECONFLICT, "tenant %q is being rehearsed already (%s)", req.ClientKey, other.snapshot().ID)
	}
	s.mu.Lock()
	if s.base.Err() != nil {
		s.mu.Unlock()
		reh.mu.Unlock()
		cancel(nil)
		return nil, errStopped
	}
	s.wg.Add(1) // under mu, as tryClaim does, so that Close never races it
	s.mu.Unlock()
	if reh.byID == nil {
		reh.byID, reh.running = map[string]*rehearsalRun{}, map[string]*rehearsalRun{}
	}
	reh.byID[id], reh.running[req.ClientKey] = run, run
	reh.order = append(reh.order, id)
	if len(reh.order) > keptRehearsals {
		delete(reh.byID, reh.order[0])
		reh.order = reh.order[1:]
	}
	reh.mu.Unlock()

	// Checked once registered: a migration scheduled from now on yields the
	// rehearsal (Schedule and Start cancel it and wait), and one scheduled
	// before is seen here.
	tenant, err := s.rehearsable(ctx, st, peer, req)
	if err != nil {
		reh.mu.Lock()
		delete(reh.running, req.ClientKey)
		delete(reh.byID, id)
		reh.order = slices.DeleteFunc(reh.order, func(o string) bool { return o == id })
		reh.mu.Unlock()
		close(run.done)
		cancel(nil)
		s.wg.Done()
		return nil, err
	}

	s.log.Info("rehearsal started", "tenant", req.ClientKey, "rehearsal_id", id, "source", req.Realm, "target", req.Target)
	go func() {
		defer s.wg.Done()
		defer close(run.done)
		defer cancel(nil)
		end := s.runRehearsal(runCtx, st, peer, tenant, run)
		// The copy is gone from the target and the tenant free for another
		// rehearsal before anyone reads that this one ended.
		reh.mu.Lock()
		if reh.running[req.ClientKey] == run {
			delete(reh.running, req.ClientKey)
		}
		reh.mu.Unlock()
		run.update(end)
		r := run.snapshot()
		s.log.Info("rehearsal "+string(r.State), "tenant", r.ClientKey, "rehearsal_id", r.ID, "detail", r.Detail,
			"rows", r.Progress.RowsCopied, "duration", r.Duration(r.EndedAt).String(), "fits_window", r.FitsWindow())
	}()
	return run.snapshot(), nil
}

// rehearsable returns the tenant to rehearse, or refuses a rehearsal of a
// tenant that a real migration holds (frozen, or with an unfinished
// migration in its realm) or that the target cannot take.
func (s *Service) rehearsable(ctx context.Context, st store.Store, peer Peer, req RehearsalRequest) (*realmhook.Tenant, error) {
	t, err := st.GetTenant(ctx, req.ClientKey)
	if err != nil {
		return nil, fmt.Errorf("rehearse: %w", err)
	}
	if err := s.checkRehearsable(ctx, t, req.Realm); err != nil {
		return nil, err
	}
	if err := peer.CheckTables(ctx, s.tables); err != nil {
		return nil, fmt.Errorf("rehearse: target realm %s: %w", req.Target, err)
	}
	return t, nil
}

// checkRehearsable refuses a rehearsal of a tenant that a real migration
// holds: frozen, or with an unfinished migration in its realm.
func (s *Service) checkRehearsable(ctx context.Context, t *realmhook.Tenant, realm string) error {
	if t.State != realmhook.TenantActive {
		return realmhook.Errorf(realmhook.ECONFLICT, "tenant %q is %s in realm %s, not active: only an active tenant is rehearsed", t.ClientKey, t.State, realm)
	}
	if t.Frozen() {
		return realmhook.Errorf(realmhook.ECONFLICT, "tenant %q is frozen by migration %q: no rehearsal while a migration runs", t.ClientKey, t.MigrationID)
	}
	ms, err := s.served[realm].ListMigrations(ctx, holdingStates...)
	if err != nil {
		return fmt.Errorf("rehearse: list migrations: %w", err)
	}
	for _, m := range ms {
		if m.ClientKey == t.ClientKey && m.State != realmhook.MigrationFailed {
			return realmhook.Errorf(realmhook.ECONFLICT, "tenant %q has migration %q in state %s: no rehearsal while a migration runs", t.ClientKey, m.ID, m.State)
		}
	}
	return nil
}

// GetRehearsal returns a rehearsal this process ran or runs.
func (s *Service) GetRehearsal(id string) (*Rehearsal, bool) {
	s.rehearsals.mu.Lock()
	run := s.rehearsals.byID[id]
	s.rehearsals.mu.Unlock()
	if run == nil {
		return nil, false
	}
	return run.snapshot(), true
}

// Rehearsals returns this process's rehearsals, newest first.
func (s *Service) Rehearsals() []*Rehearsal {
	s.rehearsals.mu.Lock()
	defer s.rehearsals.mu.Unlock()
	out := make([]*Rehearsal, 0, len(s.rehearsals.order))
	for _, id := range slices.Backward(s.rehearsals.order) {
		out = append(out, s.rehearsals.byID[id].snapshot())
	}
	return out
}

// yieldRehearsal cancels the tenant's rehearsal, if one runs here, and
// waits until it has cleaned up the target: a real migration beginning
// must not meet the rehearsal's copy there.
func (s *Service) yieldRehearsal(ctx context.Context, clientKey string) error {
	s.rehearsals.mu.Lock()
	run := s.rehearsals.running[clientKey]
	s.rehearsals.mu.Unlock()
	if run == nil {
		return nil
	}
	run.cancel(errYielded)
	select {
	case <-run.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the tenant's rehearsal to stop: %w", ctx.Err())
	}
}

// runRehearsal is the rehearsal's job: prepare the target, copy every
// table from one snapshot of the source with the migration's own copy
// (copyTable), verify it as a migration does (verifyCopy), and discard the
// copy whatever happened. It returns how to record the outcome.
func (s *Service) runRehearsal(ctx context.Context, st store.Store, peer Peer, tenant *realmhook.Tenant, run *rehearsalRun) func(*Rehearsal) {
	r := run.snapshot()
	// What the target knows the rehearsal by: a migration id of its own.
	m := &realmhook.Migration{ClientKey: r.ClientKey, ID: r.ID, SourceRealm: r.SourceRealm, TargetRealm: r.TargetRealm,
		State: realmhook.MigrationCopying, StartTime: r.StartedAt, EndTime: r.StartedAt.Add(r.Window)}
	rows, err := s.rehearse(ctx, st, peer, tenant, m, run)
	end := s.now().UTC()
	// Cleaned up even when cancelled: a context of its own.
	cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	discardErr := peer.Discard(cctx, m, childrenFirst(s.tables))
	if discardErr != nil {
		s.log.Warn("rehearsal: discard the target's copy", "tenant", r.ClientKey, "rehearsal_id", r.ID, "err", discardErr)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("rehearsal failed", "tenant", r.ClientKey, "rehearsal_id", r.ID, "err", err)
	}
	return func(r *Rehearsal) {
		r.EndedAt = end
		switch {
		case err == nil && discardErr == nil:
			r.State, r.Verified = RehearsalPassed, true
			r.Detail = fmt.Sprintf("verified %d rows in %d tables: counts and checksums equal", rows, len(s.tables))
		case err == nil:
			r.State, r.Verified = RehearsalFailed, true
			r.Detail = "verified, but its copy could not be discarded from the target: " + realmhook.ErrorMessage(discardErr)
		case ctx.Err() != nil:
			r.State, r.Detail = RehearsalCancelled, context.Cause(ctx).Error()
		default:
			r.State, r.Detail = RehearsalFailed, realmhook.ErrorMessage(err)
		}
	}
}

func (s *Service) rehearse(ctx context.Context, st store.Store, peer Peer, tenant *realmhook.Tenant, m *realmhook.Migration, run *rehearsalRun) (int64, error) {
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return 0, err
	}
	defer snap.Close()
	if err := peer.PrepareIncoming(ctx, tenant, m.ID); err != nil {
		return 0, fmt.Errorf("prepare target: %w", err)
	}
	var total int64
	for _, t := range s.tables {
		n, err := snap.CountRows(ctx, t, m.ClientKey)
		if err != nil {
			return 0, fmt.Errorf("count %s: %w", t.Name, err)
		}
		total += n
	}
	run.update(func(r *Rehearsal) { r.Progress.RowsTotal = total })
	job := copyJob{
		src:   snap,
		check: func() error { return context.Cause(ctx) },
		save: func(next checkpoint, rows int64) error {
			run.update(func(r *Rehearsal) {
				r.Progress.RowsCopied += rows
				r.Progress.TablesDone = next.Table
			})
			return context.Cause(ctx)
		},
	}
	cp := &checkpoint{Summed: true}
	for cp.Table < len(s.tables) {
		if err := s.copyTable(ctx, job, peer, m, cp); err != nil {
			return 0, err
		}
	}
	return s.verifyCopy(ctx, snap, peer, m.ClientKey, cp, job.check)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
