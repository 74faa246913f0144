package migration

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// errStopped: the Service was closed (the process is shutting down), so it
// takes on no more work. A hook refused so may succeed on another replica or
// after a restart: the host is told to retry.
var errStopped = realmhook.Errorf(realmhook.EUNAVAILABLE, "the migration service is stopping; retry")

// errLeaseLost: another replica took the job's lease; this replica stops.
var errLeaseLost = errors.New("lease lost to another replica")

// ErrFenced is in the chain of a target's refusal of a write whose fencing
// token (WithFence) is lower than one it has seen for the migration: another
// replica took over the job, and this one stops, as when it finds its lease
// lost, rather than failing the migration.
var ErrFenced = realmhook.Errorf(realmhook.ECONFLICT, "the target refused a write with a stale fencing token: another replica took over the migration")

// tryClaim takes this process's claim on a migration (by lease name) unless
// someone here holds it or the Service is stopped. The claim's context lives
// as long as the Service, not as long as any request.
func (s *Service) tryClaim(name string) (*holder, context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy[name] != nil || s.base.Err() != nil {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(s.base)
	h := &holder{cancel: cancel, done: make(chan struct{})}
	s.busy[name] = h
	// Under mu, so that Close (which cancels base under mu) never races an Add.
	s.wg.Add(1)
	return h, ctx
}

// claim waits until it can take the claim; with preempt it first cancels the
// current holder (a rollback stops a running copy).
func (s *Service) claim(ctx context.Context, name string, preempt bool) (*holder, context.Context, error) {
	for {
		if h, hctx := s.tryClaim(name); h != nil {
			return h, hctx, nil
		}
		s.mu.Lock()
		cur := s.busy[name]
		s.mu.Unlock()
		if s.base.Err() != nil {
			return nil, nil, errStopped
		}
		if cur == nil {
			continue
		}
		if preempt {
			cur.cancel()
		}
		select {
		case <-cur.done:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("wait for migration job: %w", ctx.Err())
		}
	}
}

func (s *Service) unclaim(name string, h *holder) {
	s.mu.Lock()
	if s.busy[name] == h {
		delete(s.busy, name)
	}
	s.mu.Unlock()
	h.cancel()
	close(h.done)
	s.wg.Done()
}

// lease is a held store lease, renewed as a job goes on.
type lease struct {
	s       *Service
	st      store.Store
	name    string
	renewed time.Time
	// fence is the lease's fencing token (WithFence): when it was taken,
	// in nanoseconds. A replica takes a lease only once the last holder's
	// has expired, so a later holder's token is larger than every earlier
	// one's, as far as the replicas' clocks agree, which the leases
	// themselves already need.
	fence int64
}

// fenced returns ctx carrying the lease's fencing token, for the peer's
// writes.
func (l *lease) fenced(ctx context.Context) context.Context { return WithFence(ctx, l.fence) }

// acquireLease takes the named lease in st; ok is false when another replica
// holds it.
func (s *Service) acquireLease(ctx context.Context, st store.Store, name string) (*lease, bool, error) {
	now := s.now()
	ok, err := st.AcquireLease(ctx, name, s.owner, s.cfg.LeaseTTL, now)
	if err != nil {
		return nil, false, fmt.Errorf("lease %s: %w", name, err)
	}
	if !ok {
		return nil, false, nil
	}
	return &lease{s: s, st: st, name: name, renewed: now, fence: now.UnixNano()}, true, nil
}

// keep renews the lease once a third of its TTL has passed (or always, with
// force); errLeaseLost when another replica has it now.
func (l *lease) keep(ctx context.Context, force bool) error {
	now := l.s.now()
	if !force && now.Sub(l.renewed) < l.s.cfg.LeaseTTL/3 {
		return nil
	}
	ok, err := l.st.AcquireLease(ctx, l.name, l.s.owner, l.s.cfg.LeaseTTL, now)
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.name, err)
	}
	if !ok {
		return errLeaseLost
	}
	l.renewed = now
	return nil
}

// release frees the lease so another replica may take over at once; it runs
// even when the job's context was cancelled by a shutdown.
func (l *lease) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.st.ReleaseLease(ctx, l.name, l.s.owner); err != nil {
		l.s.log.Warn("release lease", "lease", l.name, "err", err)
	}
}

// startJob runs m's background job (copy and verify, or finishing a commit or
// a rollback) unless this process already runs it or another replica holds
// its lease. It reports whether it started one.
func (s *Service) startJob(realm string, m *realmhook.Migration) bool {
	name := leaseName(m.ClientKey, m.ID)
	h, ctx := s.tryClaim(name)
	if h == nil {
		return false
	}
	st := s.served[realm]
	l, ok, err := s.acquireLease(ctx, st, name)
	if err != nil || !ok {
		if err != nil {
			s.log.Warn("migration job not started", "tenant", m.ClientKey, "migration_id", m.ID, "err", err)
		}
		s.unclaim(name, h)
		return false
	}
	go func() {
		defer s.unclaim(name, h)
		defer l.release()
		s.runJob(l.fenced(ctx), l, st, m.ClientKey, m.ID)
	}()
	return true
}

// runJob drives one migration forward from whatever state its record holds
// until it needs a hook (ready-to-commit), ends, or the job must stop.
func (s *Service) runJob(ctx context.Context, l *lease, st store.Store, clientKey, id string) {
	for ctx.Err() == nil {
		m, err := st.GetMigration(ctx, clientKey, id)
		if err != nil {
			s.jobError(ctx, st, &realmhook.Migration{ClientKey: clientKey, ID: id}, err)
			return
		}
		switch m.State {
		case realmhook.MigrationCopying:
			err = s.copyTenant(ctx, l, st, m)
		case realmhook.MigrationVerifying:
			err = s.verifyTenant(ctx, l, st, m)
		case realmhook.MigrationCommitting:
			err = s.finishCommit(ctx, st, m)
		case realmhook.MigrationRollingBack:
			err = s.finishRollback(ctx, st, m)
		default:
			return
		}
		if err != nil {
			s.jobError(ctx, st, m, err)
			return
		}
	}
}

// jobError decides what an error stopping a job means: a failed migration, a
// job another party took over, or a transient error that a later poll retries
// from the last checkpoint.
func (s *Service) jobError(ctx context.Context, st store.Store, m *realmhook.Migration, err error) {
	log := s.log.With("tenant", m.ClientKey, "migration_id", m.ID, "state", string(m.State))
	switch {
	case ctx.Err() != nil:
		log.Info("migration job stopped", "reason", context.Cause(ctx))
	case errors.Is(err, errLeaseLost), errors.Is(err, ErrFenced), errors.Is(err, errStateChanged):
		log.Info("migration job stopped", "reason", err)
	case permanent(err) && failable(m.State):
		log.Warn("migration failed", "err", err)
		if err := s.fail(ctx, st, m, err); err != nil {
			log.Warn("fail migration", "err", err)
		}
	default:
		log.Warn("migration job interrupted; it resumes at the next poll", "err", err)
	}
}

// failable reports whether a job in state may end the migration as failed: a
// commit or rollback that was recorded is finished, never failed.
func failable(state realmhook.MigrationState) bool {
	switch state {
	case realmhook.MigrationScheduled, realmhook.MigrationCopying, realmhook.MigrationVerifying:
		return true
	}
	return false
}

// checkWindow refuses (ECONFLICT) once the migration window has ended: a
// migration not ready to commit by EndTime is failed.
func (s *Service) checkWindow(m *realmhook.Migration) error {
	if !s.now().Before(m.EndTime) {
		return refusal(realmhook.ECONFLICT, errCannotGoOn, "migration window ended at %s before the copy was verified", m.EndTime.UTC().Format(time.RFC3339))
	}
	return nil
}

// poll looks at every unfinished migration of every served realm: it fails
// those whose window ended and runs the jobs nobody runs (after a restart, or
// when another replica's lease expired).
func (s *Service) poll(ctx context.Context) {
	for realm, st := range s.served {
		ms, err := st.ListMigrations(ctx, realmhook.MigrationScheduled, realmhook.MigrationCopying,
			realmhook.MigrationVerifying, realmhook.MigrationCommitting, realmhook.MigrationRollingBack)
		if err != nil {
			s.log.Warn("list migrations", "realm", realm, "err", err)
			continue
		}
		for _, m := range ms {
			if ctx.Err() != nil {
				return
			}
			switch m.State {
			case realmhook.MigrationScheduled, realmhook.MigrationCopying, realmhook.MigrationVerifying:
				if s.checkWindow(m) != nil {
					s.expire(ctx, realm, m)
				} else if m.State != realmhook.MigrationScheduled {
					s.startJob(realm, m)
				}
			default:
				s.startJob(realm, m)
			}
		}
	}
}

// expire fails a migration whose window ended, first stopping this process's
// job for it. When another replica holds the lease, its own job sees the
// window end and fails the migration itself.
func (s *Service) expire(ctx context.Context, realm string, m *realmhook.Migration) {
	name := leaseName(m.ClientKey, m.ID)
	h, hctx, err := s.claim(ctx, name, true)
	if err != nil {
		return
	}
	defer s.unclaim(name, h)
	st := s.served[realm]
	l, ok, err := s.acquireLease(hctx, st, name)
	if err != nil || !ok {
		return
	}
	defer l.release()
	hctx = l.fenced(hctx)
	cur, err := st.GetMigration(hctx, m.ClientKey, m.ID)
	if err != nil {
		s.log.Warn("expire migration", "tenant", m.ClientKey, "migration_id", m.ID, "err", err)
		return
	}
	switch cur.State {
	case realmhook.MigrationScheduled, realmhook.MigrationCopying, realmhook.MigrationVerifying:
		if err := s.checkWindow(cur); err != nil {
			s.jobError(hctx, st, cur, err)
		}
	}
}
