package migration

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// Request is the body of /schedule and /start (only MigrationID for the rest).
type Request struct {
	MigrationID string
	// Location is the target realm key.
	Location  string
	StartTime time.Time
	EndTime   time.Time
}

// MaxIDBytes bounds the migrationId the host sends; it ends up in lease names.
const MaxIDBytes = 255

// CheckID refuses an empty or over-long migrationId (EINVALID). Every hook's
// id passes through it, whichever way it came (body or query).
func CheckID(id string) error {
	switch {
	case id == "":
		return realmhook.Errorf(realmhook.EINVALID, "migrationId is required")
	case len(id) > MaxIDBytes:
		return realmhook.Errorf(realmhook.EINVALID, "migrationId is longer than %d bytes", MaxIDBytes)
	}
	return nil
}

// checkScheduleRequest is the one check of a /schedule or /start body's
// fields; the HTTP layer only parses them.
func checkScheduleRequest(tenant *realmhook.Tenant, req Request) error {
	switch {
	case tenant == nil || tenant.ClientKey == "":
		return realmhook.Errorf(realmhook.EINVALID, "tenant is required")
	case req.Location == "":
		return realmhook.Errorf(realmhook.EINVALID, "location is required")
	case !realmhook.IsRealmKey(req.Location):
		return realmhook.Errorf(realmhook.EINVALID, "location %q is not a realm key: want %s", req.Location, realmhook.RealmKeyRule)
	case req.StartTime.IsZero():
		return realmhook.Errorf(realmhook.EINVALID, "startTime is required")
	case req.EndTime.IsZero():
		return realmhook.Errorf(realmhook.EINVALID, "endTime is required")
	case !req.EndTime.After(req.StartTime):
		return realmhook.Errorf(realmhook.EINVALID, "endTime %s is not after startTime %s",
			req.EndTime.UTC().Format(time.RFC3339), req.StartTime.UTC().Format(time.RFC3339))
	}
	return CheckID(req.MigrationID)
}

// servedStore returns the store of a realm this process serves.
func (s *Service) servedStore(realm string) (store.Store, error) {
	st, ok := s.served[realm]
	if !ok {
		return nil, realmhook.Errorf(realmhook.EINVALID, "realm %q is not served by this process", realm)
	}
	return st, nil
}

// Schedule records a migration of tenant from realm (where its active record
// lives) to req.Location. Repeating it returns the existing migration.
func (s *Service) Schedule(ctx context.Context, realm string, tenant *realmhook.Tenant, req Request) (*realmhook.Migration, error) {
	if err := checkScheduleRequest(tenant, req); err != nil {
		return nil, err
	}
	st, err := s.servedStore(realm)
	if err != nil {
		return nil, err
	}
	if m, err := st.GetMigration(ctx, tenant.ClientKey, req.MigrationID); err == nil {
		return sameSchedule(m, req)
	} else if realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
		return nil, fmt.Errorf("schedule %s: %w", req.MigrationID, err)
	}
	if !s.cfg.Enabled {
		return nil, refusal(realmhook.EINVALID, errSwitchedOff, "data residency migrations are switched off")
	}
	peer, ok := s.peers[req.Location]
	if !ok && req.Location != realm {
		return nil, refusal(realmhook.EINVALID, errRealmNotSupported, "realm %s is not supported", req.Location)
	}
	// A target that lacks a table would fail the copy hours later, with the
	// tenant frozen; refuse now, naming the table.
	if req.Location != realm {
		if err := peer.CheckTables(ctx, s.tables); err != nil {
			if c := realmhook.ErrorCode(err); c == realmhook.ENOTFOUND || c == realmhook.EINVALID {
				return nil, realmhook.Errorf(realmhook.EINVALID, "target realm %s cannot take the tenant's data: %s", req.Location, realmhook.ErrorMessage(err))
			}
			return nil, fmt.Errorf("schedule %s: check target tables: %w", req.MigrationID, err)
		}
	}

	if err := s.checkCrossing(ctx, st, req.Location); err != nil {
		return nil, err
	}

	// Count the other served realms and create under one lock so that two
	// schedules here cannot both take the last slot; the source realm's own
	// count is taken by its database in the transaction that creates the
	// migration, so that every replica of the realm counts together.
	s.scheduleMu.Lock()
	defer s.scheduleMu.Unlock()
	elsewhere, err := s.checkCapacity(ctx, tenant, req.MigrationID, realm)
	if err != nil {
		return nil, err
	}
	limit := store.Limit{States: activeStates}
	if s.cfg.MaxConcurrent > 0 {
		if limit.Max = s.cfg.MaxConcurrent - elsewhere; limit.Max <= 0 {
			return nil, tooManyConcurrent(elsewhere, s.cfg.MaxConcurrent)
		}
	}
	// A real migration wins over a rehearsal: it stops, its copy is gone
	// from the target, before the migration exists.
	if err := s.yieldRehearsal(ctx, tenant.ClientKey); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	m := &realmhook.Migration{
		ClientKey:   tenant.ClientKey,
		ID:          req.MigrationID,
		SourceRealm: realm,
		TargetRealm: req.Location,
		State:       realmhook.MigrationScheduled,
		StartTime:   req.StartTime.UTC(),
		EndTime:     req.EndTime.UTC(),
		Progress:    realmhook.Progress{TablesTotal: len(s.tables)},
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	err = st.CreateMigrationWithin(ctx, m, limit)
	var le *store.LimitError
	if errors.As(err, &le) {
		return nil, tooManyConcurrent(elsewhere+le.Active, s.cfg.MaxConcurrent)
	} else if realmhook.ErrorCode(err) == realmhook.ECONFLICT {
		// A concurrent repeat of this schedule won.
		existing, gerr := st.GetMigration(ctx, tenant.ClientKey, req.MigrationID)
		if gerr != nil {
			return nil, fmt.Errorf("schedule %s: %w", req.MigrationID, gerr)
		}
		return sameSchedule(existing, req)
	} else if err != nil {
		return nil, fmt.Errorf("schedule %s: %w", req.MigrationID, err)
	}
	s.log.Info("migration scheduled", "tenant", m.ClientKey, "migration_id", m.ID,
		"source", m.SourceRealm, "target", m.TargetRealm, "end_time", m.EndTime)
	return m, nil
}

// sameSchedule answers a repeated schedule: the existing migration, unless the
// repeat names another target.
func sameSchedule(m *realmhook.Migration, req Request) (*realmhook.Migration, error) {
	if m.TargetRealm != req.Location {
		return nil, realmhook.Errorf(realmhook.ECONFLICT,
			"migration %q is already scheduled to %s, not %s", m.ID, m.TargetRealm, req.Location)
	}
	return m, nil
}

// checkCapacity refuses a schedule while the tenant has another unfinished
// migration (ECONFLICT) in any served realm, and returns how many
// migrations are scheduled or running in the served realms other than
// source, which count against MaxConcurrent with the source's own.
func (s *Service) checkCapacity(ctx context.Context, tenant *realmhook.Tenant, id, source string) (int, error) {
	elsewhere := 0
	for realm, st := range s.served {
		ms, err := st.ListMigrations(ctx, holdingStates...)
		if err != nil {
			return 0, fmt.Errorf("count migrations in %s: %w", realm, err)
		}
		for _, m := range ms {
			// A failed migration holds the tenant only while it keeps it
			// frozen, that is until its rollback.
			holds := m.State != realmhook.MigrationFailed || tenant.MigrationID == m.ID
			if m.ClientKey == tenant.ClientKey && m.ID != id && holds {
				return 0, realmhook.Errorf(realmhook.ECONFLICT,
					"tenant %q has migration %q in state %s", tenant.ClientKey, m.ID, m.State)
			}
			if m.State != realmhook.MigrationFailed && realm != source {
				elsewhere++
			}
		}
	}
	return elsewhere, nil
}

// tooManyConcurrent is the E0004 refusal of a schedule beyond MaxConcurrent.
func tooManyConcurrent(running, limit int) error {
	return refusal(realmhook.ECONFLICT, errTooManyConcurrent,
		"%d migrations are scheduled or running; the limit is %d", running, limit)
}

// Start freezes the tenant's writes and starts copying in the background; it
// answers at once. Repeating it while the migration runs returns it.
func (s *Service) Start(ctx context.Context, realm string, tenant *realmhook.Tenant, req Request) (*realmhook.Migration, error) {
	// The host sends /start the body of /schedule; it is checked the same way.
	if err := checkScheduleRequest(tenant, req); err != nil {
		return nil, err
	}
	st, err := s.servedStore(realm)
	if err != nil {
		return nil, err
	}
	for {
		m, err := st.GetMigration(ctx, tenant.ClientKey, req.MigrationID)
		if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
			return nil, notScheduled(tenant.ClientKey, req.MigrationID)
		} else if err != nil {
			return nil, fmt.Errorf("start %s: %w", req.MigrationID, err)
		}
		if req.Location != m.TargetRealm {
			return nil, realmhook.Errorf(realmhook.ECONFLICT,
				"migration %q is scheduled to %s, not %s", m.ID, m.TargetRealm, req.Location)
		}
		switch m.State {
		case realmhook.MigrationScheduled:
		case realmhook.MigrationCopying, realmhook.MigrationVerifying, realmhook.MigrationReadyToCommit:
			return m, nil
		default:
			return nil, realmhook.Errorf(realmhook.ECONFLICT, "migration %q is %s; it cannot start", m.ID, m.State)
		}
		err = s.startScheduled(ctx, realm, st, m, req)
		if errors.Is(err, errStateChanged) {
			continue // a concurrent repeat started it; answer from its record
		} else if err != nil {
			return nil, err
		}
		return m, nil
	}
}

// startScheduled freezes the tenant and then records the start: in this
// order, a crash in between leaves a frozen tenant and a scheduled migration,
// which a repeated /start or a /rollback completes; never a copy of a tenant
// that still takes writes.
func (s *Service) startScheduled(ctx context.Context, realm string, st store.Store, m *realmhook.Migration, req Request) error {
	if err := s.checkWindow(m); err != nil {
		return err
	}
	// Scheduled elsewhere (another replica), a rehearsal here may have begun
	// since.
	if err := s.yieldRehearsal(ctx, m.ClientKey); err != nil {
		return err
	}
	t, err := s.frozenTenant(ctx, st, m)
	if err != nil {
		return fmt.Errorf("start %s: %w", m.ID, err)
	}
	// The start's one transition announces the freeze: a repeat of the hook
	// finds the migration started and writes nothing.
	started := s.event(realmhook.EventMigrationStarted, t, m, m.SourceRealm)
	if m.TargetRealm == m.SourceRealm {
		return s.transition(ctx, st, m, realmhook.MigrationReadyToCommit, "started; target is the current realm, nothing to copy", nil, started...)
	}
	err = s.transition(ctx, st, m, realmhook.MigrationCopying, "started", func(n *realmhook.Migration) {
		// The host's latest word on the window is the one that counts.
		if !req.EndTime.IsZero() && req.EndTime.After(n.StartTime) {
			n.EndTime = req.EndTime.UTC()
		}
	}, started...)
	if err != nil {
		return err
	}
	s.startJob(realm, m)
	return nil
}

// Status returns the migration, looking in realm's store first and then in
// every served store. One row read.
func (s *Service) Status(ctx context.Context, realm, clientKey, id string) (*realmhook.Migration, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	return s.status.get(ctx, clientKey, id, func(ctx context.Context) (*realmhook.Migration, error) {
		m, _, err := s.find(ctx, realm, clientKey, id)
		return m, err
	})
}

// Commit makes the target copy the tenant's data: from ready-to-commit it
// records committing, then activates the tenant in the target, marks it moved
// in the source and records committed. Repeating it returns the committed
// migration.
func (s *Service) Commit(ctx context.Context, realm, clientKey, id string) (*realmhook.Migration, error) {
	for {
		m, home, err := s.find(ctx, realm, clientKey, id)
		if err != nil {
			return nil, err
		}
		switch m.State {
		case realmhook.MigrationCommitted:
			return m, nil
		case realmhook.MigrationCommitting:
			return s.finishNow(ctx, home, m)
		case realmhook.MigrationReadyToCommit:
		default:
			return nil, realmhook.Errorf(realmhook.ECONFLICT, "migration %q is %s, not ready-to-commit", id, m.State)
		}
		// Recorded before anything changes, so a crash from here on is
		// finished by Run, never left half-done.
		err = s.transition(ctx, s.served[home], m, realmhook.MigrationCommitting, "commit requested", nil)
		if errors.Is(err, errStateChanged) {
			continue
		} else if err != nil {
			return nil, err
		}
		pauseAt(stepCommitRecorded)
		return s.finishNow(ctx, home, m)
	}
}

// Rollback undoes a migration in any state but committed: it stops the copy,
// records rolling-back, deletes the target copy and unfreezes the tenant.
// Repeating it returns the rolled-back migration.
func (s *Service) Rollback(ctx context.Context, realm, clientKey, id string) (*realmhook.Migration, error) {
	m, home, err := s.find(ctx, realm, clientKey, id)
	if err != nil {
		return nil, err
	}
	if m, err := rollbackable(m); m != nil || err != nil {
		return m, err
	}
	name := leaseName(clientKey, id)
	// Stop this process's copy first, so that it writes nothing after the
	// cleanup. A copy on another replica stops at its next checkpoint, when it
	// finds the state changed, and releases the lease to whoever finishes.
	h, hctx, err := s.claim(ctx, name, true)
	if err != nil {
		return nil, err
	}
	defer s.unclaim(name, h)
	st := s.served[home]
	for {
		if m, err = st.GetMigration(hctx, clientKey, id); err != nil {
			return nil, fmt.Errorf("rollback %s: %w", id, err)
		}
		if done, err := rollbackable(m); done != nil || err != nil {
			return done, err
		}
		if m.State == realmhook.MigrationRollingBack {
			break
		}
		err = s.transition(hctx, st, m, realmhook.MigrationRollingBack, "rollback requested", nil)
		if err == nil {
			break
		} else if !errors.Is(err, errStateChanged) {
			return nil, err
		}
	}
	return s.finishClaimed(ctx, hctx, st, m)
}

// rollbackable returns (m, nil) when a rollback has nothing left to do, an
// error when it must be refused, and (nil, nil) when it should go on.
func rollbackable(m *realmhook.Migration) (*realmhook.Migration, error) {
	switch m.State {
	case realmhook.MigrationRolledBack:
		return m, nil
	case realmhook.MigrationCommitted:
		return nil, realmhook.Errorf(realmhook.ECONFLICT, "migration %q is committed; it cannot be rolled back", m.ID)
	}
	return nil, nil
}

// finishNow finishes a recorded commit within the hook: under this process's
// claim and the migration's lease. It waits for, rather than stops, a job of
// this process that holds the claim: that job is finishing the same commit.
// When another replica holds the lease, it is finishing the job; the recorded
// state is the answer.
func (s *Service) finishNow(ctx context.Context, home string, m *realmhook.Migration) (*realmhook.Migration, error) {
	name := leaseName(m.ClientKey, m.ID)
	h, hctx, err := s.claim(ctx, name, false)
	if err != nil {
		return nil, err
	}
	defer s.unclaim(name, h)
	return s.finishClaimed(ctx, hctx, s.served[home], m)
}

// finishClaimed runs the finishing step under the lease. It works in hctx,
// which outlives the request: a commit or rollback the host stops waiting for
// still completes.
func (s *Service) finishClaimed(ctx, hctx context.Context, st store.Store, m *realmhook.Migration) (*realmhook.Migration, error) {
	l, ok, err := s.acquireLease(hctx, st, leaseName(m.ClientKey, m.ID))
	if err != nil {
		return nil, err
	}
	if !ok {
		return st.GetMigration(ctx, m.ClientKey, m.ID)
	}
	defer l.release()
	hctx = l.fenced(hctx)
	cur, err := st.GetMigration(hctx, m.ClientKey, m.ID)
	if err != nil {
		return nil, fmt.Errorf("migration %s: %w", m.ID, err)
	}
	switch cur.State {
	case realmhook.MigrationCommitting:
		err = s.finishCommit(hctx, st, cur)
	case realmhook.MigrationRollingBack:
		err = s.finishRollback(hctx, st, cur)
	}
	if err != nil {
		return nil, fmt.Errorf("migration %s: %w", m.ID, err)
	}
	return cur, nil
}

// finishCommit applies a recorded commit; every step is idempotent, so Run
// may repeat it after a crash.
func (s *Service) finishCommit(ctx context.Context, st store.Store, m *realmhook.Migration) error {
	t, err := st.GetTenant(ctx, m.ClientKey)
	if err != nil {
		return fmt.Errorf("commit: source tenant: %w", err)
	}
	now := s.now().UTC()
	if m.TargetRealm == m.SourceRealm {
		if t.MigrationID == m.ID {
			_, err := st.UpdateTenant(ctx, m.ClientKey, func(t *realmhook.Tenant) error {
				if t.MigrationID == m.ID {
					t.MigrationID = ""
					t.UpdatedAt = now
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("commit: unfreeze tenant: %w", err)
			}
		}
		return s.transition(ctx, st, m, realmhook.MigrationCommitted, "committed; the tenant stays in "+m.SourceRealm, nil,
			s.event(realmhook.EventMigrationCommitted, t, m, m.SourceRealm)...)
	}
	peer, ok := s.peers[m.TargetRealm]
	if !ok {
		return fmt.Errorf("commit: target realm %s is not configured", m.TargetRealm)
	}
	rec := *m
	rec.State = realmhook.MigrationCommitted
	rec.UpdatedAt = now
	if err := peer.Activate(ctx, t, &rec); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	pauseAt(stepCommitActivated)
	if t.State != realmhook.TenantMoved || t.MovedTo != m.TargetRealm {
		_, err := st.UpdateTenant(ctx, m.ClientKey, func(t *realmhook.Tenant) error {
			t.State = realmhook.TenantMoved
			t.MovedTo = m.TargetRealm
			t.PurgeAfter = now.Add(s.cfg.PurgeAfter)
			t.MigrationID = ""
			t.UpdatedAt = now
			return nil
		})
		if err != nil {
			return fmt.Errorf("commit: mark source tenant moved: %w", err)
		}
	}
	// The target's app hears of the commit from the target's outbox, written
	// when Activate made the tenant active there; the source's hears of it here.
	return s.transition(ctx, st, m, realmhook.MigrationCommitted, "committed; the tenant is served by "+m.TargetRealm, nil,
		s.event(realmhook.EventMigrationCommitted, t, m, m.SourceRealm)...)
}

// finishRollback applies a recorded rollback: the target copy goes, and the
// tenant works again in the source. Idempotent, like finishCommit.
func (s *Service) finishRollback(ctx context.Context, st store.Store, m *realmhook.Migration) error {
	if m.TargetRealm != m.SourceRealm {
		peer, ok := s.peers[m.TargetRealm]
		if ok {
			if err := peer.Discard(ctx, m, childrenFirst(s.tables)); err != nil {
				return fmt.Errorf("rollback: %w", err)
			}
			pauseAt(stepRollbackDiscard)
		} else {
			s.log.Warn("rollback: target realm not configured; its copy, if any, stays",
				"tenant", m.ClientKey, "migration_id", m.ID, "target", m.TargetRealm)
		}
	}
	// Only a commit of this very migration that stopped half-way can have
	// moved the tenant; the events tell. Asked before the update, which must
	// not read other tables while it holds the tenant's lock.
	began, err := s.commitBegan(ctx, st, m)
	if err != nil {
		return err
	}
	t, err := st.UpdateTenant(ctx, m.ClientKey, func(t *realmhook.Tenant) error {
		if t.MigrationID == m.ID {
			t.MigrationID = ""
		}
		if began && t.State == realmhook.TenantMoved && t.MovedTo == m.TargetRealm {
			t.State, t.MovedTo, t.PurgeAfter = realmhook.TenantActive, "", time.Time{}
		}
		t.UpdatedAt = s.now().UTC()
		return nil
	})
	if err != nil && realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
		return fmt.Errorf("rollback: unfreeze tenant: %w", err)
	}
	return s.transition(ctx, st, m, realmhook.MigrationRolledBack, "rolled back; the tenant stays in "+m.SourceRealm, nil,
		s.event(realmhook.EventMigrationRolledBack, t, m, m.SourceRealm)...)
}

// commitBegan reports whether m ever entered committing.
func (s *Service) commitBegan(ctx context.Context, st store.Store, m *realmhook.Migration) (bool, error) {
	ev, err := st.ListMigrationEvents(ctx, m.ClientKey, m.ID)
	if err != nil {
		return false, fmt.Errorf("rollback: events: %w", err)
	}
	for _, e := range ev {
		if e.To == realmhook.MigrationCommitting {
			return true, nil
		}
	}
	return false, nil
}

// checkCrossing refuses, at schedule time, a migration with a column whose
// values can never cross exactly into the target (money into SQLite, an
// interval into PostgreSQL from SQLite): better a clear E9999 naming the
// column now than a failed copy later.
func (s *Service) checkCrossing(ctx context.Context, st store.Store, target string) error {
	peer, ok := s.peers[target]
	if !ok {
		return nil
	}
	for _, t := range s.tables {
		cols, err := st.Columns(ctx, t.Name)
		if err == nil {
			_, err = s.incoming(ctx, st, peer, t, cols)
		}
		if code := realmhook.ErrorCode(err); code == realmhook.EINVALID || code == realmhook.ENOTFOUND {
			return realmhook.Errorf(realmhook.EINVALID, "migration to realm %s: %s", target, realmhook.ErrorMessage(err))
		} else if err != nil {
			return fmt.Errorf("schedule: %w", err)
		}
	}
	return nil
}
