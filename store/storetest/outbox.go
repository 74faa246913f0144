package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// newEvent returns an outbox event of tenant clientKey with every field set.
func newEvent(clientKey string, typ realmhook.EventType, n int) realmhook.Event {
	return realmhook.Event{
		ID:             fmt.Sprintf("ev-%s-%d", clientKey, n),
		Type:           typ,
		ClientKey:      clientKey,
		Realm:          "EU",
		ProductBaseURL: "https://" + clientKey + ".atlassian.net",
		MigrationID:    fmt.Sprintf("m%d", n),
		From:           "EU",
		To:             "US",
		At:             base.Add(time.Duration(n) * time.Second),
	}
}

// mustNextEvents returns NextEvents at now with a generous limit.
func mustNextEvents(t testing.TB, s store.Store, now time.Time) []store.QueuedEvent {
	t.Helper()
	got, err := s.NextEvents(t.Context(), now, 100)
	mustNoErr(t, err, "NextEvents")
	return got
}

// mustEventIDs fails unless evs are the events with the given ids, in order.
func mustEventIDs(t testing.TB, evs []store.QueuedEvent, want ...string) {
	t.Helper()
	var got []string
	for _, e := range evs {
		got = append(got, e.ID)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func testOutbox(t *testing.T, h Harness) {
	t.Run("WrittenWithTenantUpdate", func(t *testing.T) {
		s := h.Open(t)
		mustPutTenant(t, s, "ck", realmhook.TenantActive)
		want := newEvent("ck", realmhook.EventDisabled, 1)
		_, err := s.UpdateTenant(t.Context(), "ck", func(tn *realmhook.Tenant) error { tn.Enabled = false; return nil }, want)
		mustNoErr(t, err, "UpdateTenant")
		got := mustNextEvents(t, s, base)
		mustEventIDs(t, got, want.ID)
		q := got[0]
		if q.Seq <= 0 || q.Attempts != 0 || !q.NotBefore.IsZero() || q.LastError != "" {
			t.Errorf("fresh event: seq %d, attempts %d, not before %v, last error %q", q.Seq, q.Attempts, q.NotBefore, q.LastError)
		}
		mustSameTime(t, "At", q.At, want.At)
		q.Event.At = want.At
		if q.Event != want {
			t.Errorf("event = %+v, want %+v", q.Event, want)
		}
	})

	t.Run("WrittenWithPutTenant", func(t *testing.T) {
		s := h.Open(t)
		ev := newEvent("ck", realmhook.EventInstalled, 1)
		mustNoErr(t, s.PutTenant(t.Context(), newTenant("ck", realmhook.TenantActive), ev), "PutTenant")
		mustEventIDs(t, mustNextEvents(t, s, base), ev.ID)
		if _, err := s.GetTenant(t.Context(), "ck"); err != nil {
			t.Fatalf("tenant not written with its event: %v", err)
		}
	})

	t.Run("NotWrittenWhenUpdateAborts", func(t *testing.T) {
		s := h.Open(t)
		mustPutTenant(t, s, "ck", realmhook.TenantActive)
		stop := errors.New("changed my mind")
		_, err := s.UpdateTenant(t.Context(), "ck", func(*realmhook.Tenant) error { return stop }, newEvent("ck", realmhook.EventEnabled, 1))
		if !errors.Is(err, stop) {
			t.Fatalf("UpdateTenant = %v, want the change's error", err)
		}
		// A transition the state machine refuses aborts it too.
		_, err = s.UpdateTenant(t.Context(), "ck", func(tn *realmhook.Tenant) error { tn.State = realmhook.TenantIncoming; return nil },
			newEvent("ck", realmhook.EventEnabled, 2))
		mustCode(t, err, realmhook.ECONFLICT)
		_, err = s.UpdateTenant(t.Context(), "absent", func(*realmhook.Tenant) error { return nil }, newEvent("absent", realmhook.EventEnabled, 3))
		mustCode(t, err, realmhook.ENOTFOUND)
		mustEventIDs(t, mustNextEvents(t, s, base))
	})

	t.Run("WrittenWithMigrationUpdate", func(t *testing.T) {
		s := h.Open(t)
		m := newMigration("ck", "m1", realmhook.MigrationScheduled, base)
		mustNoErr(t, s.CreateMigration(t.Context(), m), "CreateMigration")
		next := *m
		next.State = realmhook.MigrationCopying
		// A stale `from` is refused, and its events with it.
		err := s.UpdateMigration(t.Context(), &next, realmhook.MigrationVerifying, "late", newEvent("ck", realmhook.EventMigrationStarted, 1))
		mustCode(t, err, realmhook.ECONFLICT)
		mustEventIDs(t, mustNextEvents(t, s, base))
		ev := newEvent("ck", realmhook.EventMigrationStarted, 2)
		mustNoErr(t, s.UpdateMigration(t.Context(), &next, realmhook.MigrationScheduled, "started", ev), "UpdateMigration")
		mustEventIDs(t, mustNextEvents(t, s, base), ev.ID)
	})

	t.Run("OldestOfEachTenantInOrder", func(t *testing.T) {
		s := h.Open(t)
		for _, ck := range []string{"a", "b"} {
			mustPutTenant(t, s, ck, realmhook.TenantActive)
		}
		write := func(ck string, n int) {
			_, err := s.UpdateTenant(t.Context(), ck, func(*realmhook.Tenant) error { return nil }, newEvent(ck, realmhook.EventEnabled, n))
			mustNoErr(t, err, "UpdateTenant")
		}
		write("b", 1)
		write("a", 2)
		write("b", 3)
		write("a", 4)
		got := mustNextEvents(t, s, base)
		mustEventIDs(t, got, "ev-b-1", "ev-a-2")
		if !(got[0].Seq < got[1].Seq) {
			t.Fatalf("seqs %d, %d not increasing", got[0].Seq, got[1].Seq)
		}
		one, err := s.NextEvents(t.Context(), base, 1)
		mustNoErr(t, err, "NextEvents limit 1")
		mustEventIDs(t, one, "ev-b-1")

		// A delivered event makes way for the tenant's next one.
		mustNoErr(t, s.DeleteEvent(t.Context(), got[0].Seq), "DeleteEvent")
		mustNoErr(t, s.DeleteEvent(t.Context(), got[0].Seq), "DeleteEvent again")
		mustEventIDs(t, mustNextEvents(t, s, base), "ev-a-2", "ev-b-3")

		// A deferred event holds back its tenant's later events, and no
		// other tenant's, until it is due.
		a := mustNextEvents(t, s, base)[0]
		later := base.Add(time.Minute)
		mustNoErr(t, s.DeferEvent(t.Context(), a.Seq, later, "upstream answered 503"), "DeferEvent")
		mustEventIDs(t, mustNextEvents(t, s, base), "ev-b-3")
		mustEventIDs(t, mustNextEvents(t, s, later.Add(-time.Microsecond)), "ev-b-3")
		due := mustNextEvents(t, s, later)
		mustEventIDs(t, due, "ev-a-2", "ev-b-3")
		if d := due[0]; d.Attempts != 1 || d.LastError != "upstream answered 503" {
			t.Errorf("deferred event: attempts %d, last error %q", d.Attempts, d.LastError)
		} else {
			mustSameTime(t, "NotBefore", d.NotBefore, later)
		}
		mustNoErr(t, s.DeferEvent(t.Context(), a.Seq, later, "again"), "DeferEvent")
		if d := mustNextEvents(t, s, later)[0]; d.Attempts != 2 || d.LastError != "again" {
			t.Errorf("deferred twice: attempts %d, last error %q", d.Attempts, d.LastError)
		}
		mustNoErr(t, s.DeferEvent(t.Context(), 1<<40, later, "gone"), "DeferEvent of an absent event")
	})

	t.Run("CountByType", func(t *testing.T) {
		s := h.Open(t)
		counts, err := s.CountEvents(t.Context())
		mustNoErr(t, err, "CountEvents")
		if len(counts) != 0 {
			t.Fatalf("empty outbox counts %v", counts)
		}
		mustPutTenant(t, s, "ck", realmhook.TenantActive)
		_, err = s.UpdateTenant(t.Context(), "ck", func(*realmhook.Tenant) error { return nil },
			newEvent("ck", realmhook.EventEnabled, 1), newEvent("ck", realmhook.EventEnabled, 2), newEvent("ck", realmhook.EventDisabled, 3))
		mustNoErr(t, err, "UpdateTenant")
		counts, err = s.CountEvents(t.Context())
		mustNoErr(t, err, "CountEvents")
		if len(counts) != 2 || counts[realmhook.EventEnabled] != 2 || counts[realmhook.EventDisabled] != 1 {
			t.Fatalf("counts %v, want 2 enabled and 1 disabled", counts)
		}
	})

	t.Run("BadEventWritesNothing", func(t *testing.T) {
		s := h.Open(t)
		mustPutTenant(t, s, "ck", realmhook.TenantActive)
		bad := newEvent("ck", realmhook.EventEnabled, 1)
		bad.ID = ""
		_, err := s.UpdateTenant(t.Context(), "ck", func(tn *realmhook.Tenant) error { tn.Enabled = false; return nil }, bad)
		mustCode(t, err, realmhook.EINVALID)
		mustCode(t, s.PutTenant(t.Context(), newTenant("other", realmhook.TenantActive), bad), realmhook.EINVALID)
		if got, err := s.GetTenant(t.Context(), "ck"); err != nil || !got.Enabled {
			t.Fatalf("tenant after a refused update = %+v, %v; want it unchanged", got, err)
		}
		if _, err := s.GetTenant(t.Context(), "other"); realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
			t.Fatalf("tenant of a refused put: %v, want not found", err)
		}
		// The same id twice is refused, and the change with it.
		dup := newEvent("ck", realmhook.EventEnabled, 2)
		_, err = s.UpdateTenant(t.Context(), "ck", func(tn *realmhook.Tenant) error { tn.Enabled = false; return nil }, dup, dup)
		if err == nil {
			t.Fatal("two events with one id: no error")
		}
		if got, err := s.GetTenant(t.Context(), "ck"); err != nil || !got.Enabled {
			t.Fatalf("tenant after a refused update = %+v, %v; want it unchanged", got, err)
		}
		mustEventIDs(t, mustNextEvents(t, s, base))
	})
}
