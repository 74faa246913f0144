package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// limitedStates are the states the limit tests count.
var limitedStates = []realmhook.MigrationState{realmhook.MigrationScheduled, realmhook.MigrationCopying}

// mustLimitError fails unless err is CreateMigrationWithin's refusal with
// the given count and limit.
func mustLimitError(t testing.TB, err error, active, max int) {
	t.Helper()
	mustCode(t, err, realmhook.ECONFLICT)
	var le *store.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("error = %v, want a *store.LimitError in its chain", err)
	}
	if le.Active != active || le.Max != max {
		t.Fatalf("LimitError = %+v, want Active %d, Max %d", le, active, max)
	}
}

func testMigrationLimit(t *testing.T, h Harness) {
	t.Run("Within", func(t *testing.T) {
		s := h.Open(t)
		lim := store.Limit{Max: 2, States: limitedStates}
		// Migrations in other states take no slot.
		mustNoErr(t, s.CreateMigration(t.Context(), newMigration("ck0", "done", realmhook.MigrationCommitted, base)), "CreateMigration committed")
		mustNoErr(t, s.CreateMigration(t.Context(), newMigration("ck0", "ready", realmhook.MigrationReadyToCommit, base)), "CreateMigration ready")
		mustNoErr(t, s.CreateMigrationWithin(t.Context(), newMigration("ck1", "m1", realmhook.MigrationScheduled, base), lim), "first")
		mustNoErr(t, s.CreateMigrationWithin(t.Context(), newMigration("ck2", "m2", realmhook.MigrationCopying, base), lim), "second")

		mustLimitError(t, s.CreateMigrationWithin(t.Context(), newMigration("ck3", "m3", realmhook.MigrationScheduled, base), lim), 2, 2)
		_, err := s.GetMigration(t.Context(), "ck3", "m3")
		mustCode(t, err, realmhook.ENOTFOUND)
		ev, err := s.ListMigrationEvents(t.Context(), "ck3", "m3")
		mustNoErr(t, err, "ListMigrationEvents")
		if len(ev) != 0 {
			t.Fatalf("a refused create left events %+v", ev)
		}

		// A repeat is a duplicate, whatever the count.
		err = s.CreateMigrationWithin(t.Context(), newMigration("ck1", "m1", realmhook.MigrationScheduled, base), lim)
		mustCode(t, err, realmhook.ECONFLICT)
		var le *store.LimitError
		if errors.As(err, &le) {
			t.Fatalf("duplicate refused as over the limit: %v", err)
		}

		// A migration leaving the limited states frees its slot.
		m1, err := s.GetMigration(t.Context(), "ck1", "m1")
		mustNoErr(t, err, "GetMigration m1")
		m1.State = realmhook.MigrationVerifying
		mustNoErr(t, s.UpdateMigration(t.Context(), m1, realmhook.MigrationScheduled, "on"), "UpdateMigration")
		mustNoErr(t, s.CreateMigrationWithin(t.Context(), newMigration("ck3", "m3", realmhook.MigrationScheduled, base), lim), "after a slot freed")

		// Max 0 is no limit.
		mustNoErr(t, s.CreateMigrationWithin(t.Context(), newMigration("ck4", "m4", realmhook.MigrationScheduled, base), store.Limit{States: limitedStates}), "no limit")
	})

	// Two processes on one database (two replicas of a realm) creating at
	// once take exactly Max slots between them.
	t.Run("Replicas", func(t *testing.T) {
		s := h.Open(t)
		replicas := []store.Store{s, h.Replica(t, s)}
		const max, workers = 3, 12
		lim := store.Limit{Max: max, States: limitedStates}
		var wg sync.WaitGroup
		var mu sync.Mutex
		created, refused := 0, 0
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				m := newMigration(fmt.Sprintf("ck%d", w), fmt.Sprintf("m%d", w), realmhook.MigrationScheduled, base)
				err := replicas[w%2].CreateMigrationWithin(t.Context(), m, lim)
				var le *store.LimitError
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					created++
				case errors.As(err, &le):
					refused++
				default:
					errs <- fmt.Errorf("worker %d: %w", w, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if created != max || refused != workers-max {
			t.Fatalf("%d created and %d refused, want %d and %d", created, refused, max, workers-max)
		}
		for _, r := range replicas {
			ms, err := r.ListMigrations(t.Context(), limitedStates...)
			mustNoErr(t, err, "ListMigrations")
			if len(ms) != max {
				t.Fatalf("a replica lists %d limited migrations, want %d", len(ms), max)
			}
		}
	})
}
