package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// newMigration returns a migration with every field set.
func newMigration(clientKey, id string, state realmhook.MigrationState, created time.Time) *realmhook.Migration {
	return &realmhook.Migration{
		ClientKey:         clientKey,
		ID:                id,
		SourceRealm:       "US",
		TargetRealm:       "EU",
		State:             state,
		StartTime:         base.Add(time.Hour),
		EndTime:           base.Add(3 * time.Hour),
		ErrorResponseCode: "E9999",
		Message:           "copy of " + id + " — ünïcode",
		Progress:          realmhook.Progress{TablesDone: 1, TablesTotal: 3, RowsCopied: 1 << 40, RowsTotal: 1<<40 + 5},
		Checkpoint:        `{"table":"issues","after":[42,"x"]}`,
		CreatedAt:         created,
		UpdatedAt:         created.Add(time.Second),
	}
}

// mustEvents fails unless the migration's events go through the given states.
func mustEvents(t testing.TB, s store.Store, clientKey, id string, want []realmhook.MigrationEvent) {
	t.Helper()
	got, err := s.ListMigrationEvents(t.Context(), clientKey, id)
	mustNoErr(t, err, "ListMigrationEvents")
	if len(got) != len(want) {
		t.Fatalf("events = %+v, want %d events %+v", got, len(want), want)
	}
	for i, e := range got {
		w := want[i]
		// The first event's detail is the backend's to choose.
		if e.ClientKey != clientKey || e.MigrationID != id || e.From != w.From || e.To != w.To || (w.From != "" && e.Detail != w.Detail) {
			t.Errorf("event %d = %+v, want %s→%s %q", i, e, w.From, w.To, w.Detail)
		}
		if e.At.IsZero() || e.At.Location() != time.UTC {
			t.Errorf("event %d At = %v, want a UTC time", i, e.At)
		}
		if i > 0 && e.At.Before(got[i-1].At) {
			t.Errorf("event %d At %v is before event %d At %v", i, e.At, i-1, got[i-1].At)
		}
	}
}

func testMigrations(t *testing.T, h Harness) {
	t.Run("CreateGet", func(t *testing.T) {
		s := h.Open(t)
		want := newMigration("ck", "m1", realmhook.MigrationScheduled, base)
		mustNoErr(t, s.CreateMigration(t.Context(), want), "CreateMigration")
		got, err := s.GetMigration(t.Context(), "ck", "m1")
		mustNoErr(t, err, "GetMigration")
		mustSameMigration(t, got, want)
		mustEvents(t, s, "ck", "m1", []realmhook.MigrationEvent{{To: realmhook.MigrationScheduled}})
	})

	t.Run("ZeroFields", func(t *testing.T) {
		s := h.Open(t)
		want := &realmhook.Migration{ClientKey: "ck", ID: "m0", State: realmhook.MigrationScheduled}
		mustNoErr(t, s.CreateMigration(t.Context(), want), "CreateMigration")
		got, err := s.GetMigration(t.Context(), "ck", "m0")
		mustNoErr(t, err, "GetMigration")
		mustSameMigration(t, got, want)
	})

	t.Run("Duplicate", func(t *testing.T) {
		s := h.Open(t)
		m := newMigration("ck", "m1", realmhook.MigrationScheduled, base)
		mustNoErr(t, s.CreateMigration(t.Context(), m), "CreateMigration")
		dup := newMigration("ck", "m1", realmhook.MigrationCopying, base.Add(time.Hour))
		mustCode(t, s.CreateMigration(t.Context(), dup), realmhook.ECONFLICT)
		got, err := s.GetMigration(t.Context(), "ck", "m1")
		mustNoErr(t, err, "GetMigration")
		mustSameMigration(t, got, m)
		// The same id for another tenant is another migration.
		mustNoErr(t, s.CreateMigration(t.Context(), newMigration("ck2", "m1", realmhook.MigrationScheduled, base)), "CreateMigration for another tenant")
		mustEvents(t, s, "ck", "m1", []realmhook.MigrationEvent{{To: realmhook.MigrationScheduled}})
	})

	t.Run("NotFound", func(t *testing.T) {
		s := h.Open(t)
		mustNoErr(t, s.CreateMigration(t.Context(), newMigration("ck", "m1", realmhook.MigrationScheduled, base)), "CreateMigration")
		for _, tc := range []struct{ clientKey, id string }{{"ck", "m2"}, {"ck2", "m1"}} {
			_, err := s.GetMigration(t.Context(), tc.clientKey, tc.id)
			mustCode(t, err, realmhook.ENOTFOUND)
		}
	})

	t.Run("UpdateCAS", func(t *testing.T) {
		s := h.Open(t)
		m := newMigration("ck", "m1", realmhook.MigrationScheduled, base)
		mustNoErr(t, s.CreateMigration(t.Context(), m), "CreateMigration")

		m.State = realmhook.MigrationCopying
		m.Checkpoint = "cp-1"
		m.UpdatedAt = base.Add(time.Hour)
		mustNoErr(t, s.UpdateMigration(t.Context(), m, realmhook.MigrationScheduled, "start received"), "UpdateMigration scheduled→copying")

		stale := *m
		stale.State = realmhook.MigrationFailed
		stale.Message = "must not land"
		mustCode(t, s.UpdateMigration(t.Context(), &stale, realmhook.MigrationScheduled, "stale"), realmhook.ECONFLICT)

		// Same state: progress and checkpoint move, no event.
		m.Progress = realmhook.Progress{TablesDone: 2, TablesTotal: 3, RowsCopied: 500, RowsTotal: 900}
		m.Checkpoint = "cp-2"
		mustNoErr(t, s.UpdateMigration(t.Context(), m, realmhook.MigrationCopying, "progress"), "UpdateMigration copying→copying")

		m.State = realmhook.MigrationVerifying
		mustNoErr(t, s.UpdateMigration(t.Context(), m, realmhook.MigrationCopying, "copied"), "UpdateMigration copying→verifying")
		m.State = realmhook.MigrationFailed
		m.ErrorResponseCode = realmhook.ResponseOther
		m.Message = "checksum mismatch"
		mustNoErr(t, s.UpdateMigration(t.Context(), m, realmhook.MigrationVerifying, "checksum mismatch on issues"), "UpdateMigration verifying→failed")

		got, err := s.GetMigration(t.Context(), "ck", "m1")
		mustNoErr(t, err, "GetMigration")
		mustSameMigration(t, got, m)
		mustEvents(t, s, "ck", "m1", []realmhook.MigrationEvent{
			{To: realmhook.MigrationScheduled},
			{From: realmhook.MigrationScheduled, To: realmhook.MigrationCopying, Detail: "start received"},
			{From: realmhook.MigrationCopying, To: realmhook.MigrationVerifying, Detail: "copied"},
			{From: realmhook.MigrationVerifying, To: realmhook.MigrationFailed, Detail: "checksum mismatch on issues"},
		})
	})

	t.Run("UpdateMissing", func(t *testing.T) {
		s := h.Open(t)
		m := newMigration("ck", "nope", realmhook.MigrationCopying, base)
		err := s.UpdateMigration(t.Context(), m, realmhook.MigrationScheduled, "")
		if code := realmhook.ErrorCode(err); code != realmhook.ENOTFOUND && code != realmhook.ECONFLICT {
			t.Fatalf("UpdateMigration of a missing migration: code %q (%v), want not_found or conflict", code, err)
		}
		_, err = s.GetMigration(t.Context(), "ck", "nope")
		mustCode(t, err, realmhook.ENOTFOUND)
	})

	t.Run("PutUpsertsWithoutEvent", func(t *testing.T) {
		s := h.Open(t)
		m := newMigration("ck", "m1", realmhook.MigrationCommitted, base)
		mustNoErr(t, s.PutMigration(t.Context(), m), "PutMigration insert")
		got, err := s.GetMigration(t.Context(), "ck", "m1")
		mustNoErr(t, err, "GetMigration")
		mustSameMigration(t, got, m)
		mustEvents(t, s, "ck", "m1", nil)

		m.State = realmhook.MigrationRolledBack
		m.Progress.RowsCopied = 7
		m.Checkpoint = ""
		m.EndTime = time.Time{}
		mustNoErr(t, s.PutMigration(t.Context(), m), "PutMigration replace")
		got, err = s.GetMigration(t.Context(), "ck", "m1")
		mustNoErr(t, err, "GetMigration")
		mustSameMigration(t, got, m)
		mustEvents(t, s, "ck", "m1", nil)

		// PutMigration over a created migration keeps its history.
		c := newMigration("ck", "m2", realmhook.MigrationScheduled, base)
		mustNoErr(t, s.CreateMigration(t.Context(), c), "CreateMigration")
		c.State = realmhook.MigrationCommitted
		mustNoErr(t, s.PutMigration(t.Context(), c), "PutMigration over created")
		mustEvents(t, s, "ck", "m2", []realmhook.MigrationEvent{{To: realmhook.MigrationScheduled}})
	})
}

func testListMigrations(t *testing.T, h Harness) {
	s := h.Open(t)
	// Created out of order, so that insertion order and creation order differ.
	seed := []struct {
		id    string
		state realmhook.MigrationState
		age   time.Duration // before base
	}{
		{"m-mid", realmhook.MigrationCopying, 2 * time.Hour},
		{"m-new", realmhook.MigrationFailed, 1 * time.Hour},
		{"m-old", realmhook.MigrationCopying, 3 * time.Hour},
		{"m-oldest", realmhook.MigrationCommitted, 4 * time.Hour},
	}
	created := map[string]time.Time{}
	for i, m := range seed {
		c := base.Add(-m.age)
		created[m.id] = c
		mustNoErr(t, s.CreateMigration(t.Context(), newMigration(fmt.Sprintf("ck%d", i), m.id, m.state, c)), "CreateMigration")
	}
	for _, tc := range []struct {
		name   string
		states []realmhook.MigrationState
		want   []string
	}{
		{"All", nil, []string{"m-oldest", "m-old", "m-mid", "m-new"}},
		{"One", []realmhook.MigrationState{realmhook.MigrationCopying}, []string{"m-old", "m-mid"}},
		{"Two", []realmhook.MigrationState{realmhook.MigrationFailed, realmhook.MigrationCommitted}, []string{"m-oldest", "m-new"}},
		{"None", []realmhook.MigrationState{realmhook.MigrationRolledBack}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListMigrations(t.Context(), tc.states...)
			mustNoErr(t, err, "ListMigrations")
			var ids []string
			for _, m := range got {
				ids = append(ids, m.ID)
				mustSameTime(t, "CreatedAt of "+m.ID, m.CreatedAt, created[m.ID])
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
				t.Fatalf("ListMigrations(%v) = %v, want %v", tc.states, ids, tc.want)
			}
		})
	}
}
