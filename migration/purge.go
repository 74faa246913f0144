package migration

import (
	"context"
	"errors"
	"fmt"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// sweep deletes, in every served realm, the leftover copies of tenants that
// moved away longer than PurgeAfter ago. One replica per realm sweeps at a time.
func (s *Service) sweep(ctx context.Context) {
	for realm, st := range s.served {
		if ctx.Err() != nil {
			return
		}
		l, ok, err := s.acquireLease(ctx, st, "purge:"+realm)
		if err != nil {
			s.log.Warn("purge sweep", "realm", realm, "err", err)
			continue
		} else if !ok {
			continue
		}
		if err := s.purgeRealm(ctx, l, realm, st); err != nil {
			s.log.Warn("purge sweep", "realm", realm, "err", err)
		}
		l.release()
	}
}

func (s *Service) purgeRealm(ctx context.Context, l *lease, realm string, st store.Store) error {
	moved, err := st.ListTenants(ctx, realmhook.TenantMoved)
	if err != nil {
		return fmt.Errorf("list moved tenants: %w", err)
	}
	// A purge that stopped half-way (a crash, a lost lease) left its record
	// purging; it is finished first.
	purging, err := st.ListTenants(ctx, realmhook.TenantPurging)
	if err != nil {
		return fmt.Errorf("list purging tenants: %w", err)
	}
	for _, t := range append(purging, moved...) {
		if !s.purgeDue(t) {
			continue
		}
		if err := l.keep(ctx, false); err != nil {
			return err
		}
		if err := s.purgeTenant(ctx, st, t.ClientKey); err != nil {
			s.log.Warn("purge tenant", "realm", realm, "tenant", t.ClientKey, "err", err)
			continue
		}
		s.log.Info("purged moved tenant", "realm", realm, "tenant", t.ClientKey, "moved_to", t.MovedTo)
	}
	return nil
}

// purgeDue reports whether t's leftover copy is to be deleted now: it moved
// away longer than PurgeAfter ago, or its purge began already.
func (s *Service) purgeDue(t *realmhook.Tenant) bool {
	switch t.State {
	case realmhook.TenantPurging:
		return true
	case realmhook.TenantMoved:
		return !t.PurgeAfter.IsZero() && t.PurgeAfter.Before(s.now())
	}
	return false
}

var errPurgeNotDue = errors.New("purge not due")

// purgeTenant deletes a moved tenant's rows of every table (children before
// parents), then its record. Moving the record to purging first, under the
// tenant's lock, decides the race with a migration back into this realm:
// whichever takes the record first wins, and the other backs off
// (PrepareIncoming refuses a purging record, and the sweeper leaves one that
// went incoming alone). So the sweeper never deletes a fresh copy.
func (s *Service) purgeTenant(ctx context.Context, st store.Store, clientKey string) error {
	if _, err := s.purge(ctx, st, clientKey, s.purgeDue); err != nil && !errors.Is(err, errPurgeNotDue) {
		return err
	}
	return nil
}

// PurgeNow deletes, at an operator's word, the copy a moved tenant left in
// realm, without waiting for PurgeAfter: as the sweeper would, and under
// the same lock, so it never deletes a tenant the realm serves or one a
// migration is moving back in (ECONFLICT names the state). It reports false
// when there was nothing left to purge.
func (s *Service) PurgeNow(ctx context.Context, realm, clientKey string) (bool, error) {
	st, err := s.servedStore(realm)
	if err != nil {
		return false, err
	}
	purged, err := s.purge(ctx, st, clientKey, func(t *realmhook.Tenant) bool { return t.MovedAway() })
	if errors.Is(err, errPurgeNotDue) {
		cur, gerr := st.GetTenant(ctx, clientKey)
		if gerr != nil {
			return false, fmt.Errorf("purge: %w", gerr)
		}
		return false, realmhook.Errorf(realmhook.ECONFLICT, "tenant %q is %s in realm %s, not moved away: only a moved tenant's copy is purged", clientKey, cur.State, realm)
	}
	if err != nil {
		return false, err
	}
	if purged {
		s.log.Info("purged moved tenant at an operator's request", "realm", realm, "tenant", clientKey)
	}
	return purged, nil
}

// purge is purgeTenant with the rule that says whether t's copy may go:
// false and errPurgeNotDue when it may not, false and nil when there is no
// record.
func (s *Service) purge(ctx context.Context, st store.Store, clientKey string, due func(*realmhook.Tenant) bool) (bool, error) {
	_, err := st.UpdateTenant(ctx, clientKey, func(t *realmhook.Tenant) error {
		if !due(t) {
			return errPurgeNotDue
		}
		t.State = realmhook.TenantPurging
		return nil
	})
	switch {
	case errors.Is(err, errPurgeNotDue):
		return false, err
	case realmhook.ErrorCode(err) == realmhook.ENOTFOUND:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("purge: mark tenant: %w", err)
	}
	for _, tb := range childrenFirst(s.tables) {
		if err := deleteTenantRows(ctx, st, tb, clientKey); err != nil {
			return false, fmt.Errorf("purge %s: %w", tb.Name, err)
		}
		pauseAt(stepPurgeRows)
	}
	if err := st.DeleteTenant(ctx, clientKey); err != nil {
		return false, fmt.Errorf("purge: %w", err)
	}
	return true, nil
}
