package migration

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// mustRehearsed waits for a rehearsal to end and returns it.
func mustRehearsed(t *testing.T, s *Service, id string) *Rehearsal {
	t.Helper()
	var r *Rehearsal
	mustEventually(t, "the rehearsal to end", func() bool {
		var ok bool
		r, ok = s.GetRehearsal(id)
		if !ok {
			t.Fatalf("rehearsal %s unknown", id)
		}
		return r.State != RehearsalRunning
	})
	return r
}

// rehearsalPeer holds a rehearsal's writes (not a migration's) at the
// target until the rehearsal is cancelled, or runs onCopy once before the
// first write.
type rehearsalPeer struct {
	Peer
	hold    bool
	onCopy  func()
	once    sync.Once
	blocked chan struct{}
}

func (p *rehearsalPeer) CopyRows(ctx context.Context, clientKey, id string, t store.Table, cols []string, next func() ([]store.Row, error)) (int64, error) {
	if strings.HasPrefix(id, "rehearsal-") {
		p.once.Do(func() {
			if p.onCopy != nil {
				p.onCopy()
			}
			close(p.blocked)
		})
		if p.hold {
			<-ctx.Done()
			return 0, ctx.Err()
		}
	}
	return p.Peer.CopyRows(ctx, clientKey, id, t, cols, next)
}

func TestRehearse(t *testing.T) {
	t.Run("PassesAndLeavesNothing", func(t *testing.T) {
		e := newEnv(t, "EU", "US")
		ctx := t.Context()
		var peer *rehearsalPeer
		s := e.service(e.cfg, func(realm string, p Peer) Peer {
			if realm != "US" {
				return p
			}
			// The tenant keeps writing while it is rehearsed: not frozen,
			// and the snapshot does not see it.
			peer = &rehearsalPeer{Peer: p, blocked: make(chan struct{}), onCopy: func() {
				if _, err := e.stores["EU"].PutProperty(ctx, "acme", "written-during", []byte(`1`)); err != nil {
					t.Errorf("a write during the rehearsal: %v", err)
				}
			}}
			return peer
		})
		e.mustTenant("EU", "acme", 6, 6)
		e.mustTenant("US", "other", 1, 1)
		before := e.mustTenantState("EU", "acme")

		r := must(s.Rehearse(ctx, RehearsalRequest{Realm: "EU", ClientKey: "acme", Target: "US", Window: time.Hour}))(t)
		if r.State != RehearsalRunning || !strings.HasPrefix(r.ID, "rehearsal-") {
			t.Fatalf("Rehearse = %+v, want running", r)
		}
		r = mustRehearsed(t, s, r.ID)
		if r.State != RehearsalPassed || !r.Verified || r.Progress.RowsCopied != 12 || r.Progress.RowsTotal != 12 || !r.FitsWindow() {
			t.Fatalf("rehearsal = %+v; want passed, verified, 12 of 12 rows, fitting its window", r)
		}
		if !strings.Contains(r.Detail, "verified 12 rows") {
			t.Errorf("detail = %q", r.Detail)
		}
		// The source: the record as it was (never frozen), its rows those
		// written, the one written during the rehearsal included.
		after := e.mustTenantState("EU", "acme")
		if *after != *before {
			t.Errorf("source record changed:\n%+v\n%+v", before, after)
		}
		if n := e.rowCount("EU", "acme"); n != 13 {
			t.Errorf("source holds %d rows, want 13", n)
		}
		// The target: nothing of the tenant, the other tenant untouched.
		e.mustNoTenant("US", "acme")
		if n := e.rowCount("US", "acme"); n != 0 {
			t.Errorf("target holds %d of the tenant's rows after the rehearsal", n)
		}
		if n := e.rowCount("US", "other"); n != 2 {
			t.Errorf("target's own tenant has %d rows, want 2", n)
		}
		if got := s.Rehearsals(); len(got) != 1 || got[0].ID != r.ID {
			t.Errorf("Rehearsals = %+v", got)
		}
	})

	t.Run("SourceByteIdentical", func(t *testing.T) {
		e := newEnv(t, "EU", "US")
		s := e.service(e.cfg, nil)
		e.mustTenant("EU", "acme", 5, 7)
		sums, rec := e.sums("EU", "acme"), *e.mustTenantState("EU", "acme")
		r := mustRehearsed(t, s, must(s.Rehearse(t.Context(), RehearsalRequest{Realm: "EU", ClientKey: "acme", Target: "US"}))(t).ID)
		if r.State != RehearsalPassed {
			t.Fatalf("rehearsal %+v", r)
		}
		if got := e.sums("EU", "acme"); len(got) != len(sums) || got[notesTable.Name] != sums[notesTable.Name] || got[store.PropertiesTable.Name] != sums[store.PropertiesTable.Name] {
			t.Errorf("source checksums %v, want %v", got, sums)
		}
		if got := *e.mustTenantState("EU", "acme"); got != rec {
			t.Errorf("source record %+v, want %+v", got, rec)
		}
		if r.Window != DefaultRehearsalWindow {
			t.Errorf("window %s, want the default %s", r.Window, DefaultRehearsalWindow)
		}
	})

	t.Run("RefusedWhileMigrationRuns", func(t *testing.T) {
		e := newEnv(t, "EU", "US")
		s := e.service(e.cfg, nil)
		tn := e.mustTenant("EU", "acme", 2, 2)
		must(s.Schedule(t.Context(), "EU", tn, e.req("m1", "US")))(t)
		_, err := s.Rehearse(t.Context(), RehearsalRequest{Realm: "EU", ClientKey: "acme", Target: "US"})
		if realmhook.ErrorCode(err) != realmhook.ECONFLICT || !strings.Contains(err.Error(), `migration "m1"`) {
			t.Fatalf("Rehearse during a migration: %v, want ECONFLICT naming m1", err)
		}
		for name, req := range map[string]RehearsalRequest{
			"SameRealm":    {Realm: "EU", ClientKey: "acme", Target: "EU"},
			"UnknownRealm": {Realm: "EU", ClientKey: "acme", Target: "JP"},
			"NotServed":    {Realm: "AU", ClientKey: "acme", Target: "US"},
		} {
			if _, err := s.Rehearse(t.Context(), req); realmhook.ErrorCode(err) != realmhook.EINVALID {
				t.Errorf("%s: %v, want EINVALID", name, err)
			}
		}
		if _, err := s.Rehearse(t.Context(), RehearsalRequest{Realm: "EU", ClientKey: "nobody", Target: "US"}); realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
			t.Errorf("unknown tenant: %v, want ENOTFOUND", err)
		}
	})

	t.Run("RealMigrationWins", func(t *testing.T) {
		e := newEnv(t, "EU", "US")
		ctx := t.Context()
		var peer *rehearsalPeer
		s := e.service(e.cfg, func(realm string, p Peer) Peer {
			if realm == "US" {
				peer = &rehearsalPeer{Peer: p, hold: true, blocked: make(chan struct{})}
				return peer
			}
			return p
		})
		tn := e.mustTenant("EU", "acme", 6, 6)
		r := must(s.Rehearse(ctx, RehearsalRequest{Realm: "EU", ClientKey: "acme", Target: "US"}))(t)
		select {
		case <-peer.blocked:
		case <-time.After(20 * time.Second):
			t.Fatal("the rehearsal never wrote to the target")
		}
		if _, err := s.Rehearse(ctx, RehearsalRequest{Realm: "EU", ClientKey: "acme", Target: "US"}); realmhook.ErrorCode(err) != realmhook.ECONFLICT {
			t.Errorf("a second rehearsal of the tenant: %v, want ECONFLICT", err)
		}
		// The host schedules a real migration: the rehearsal yields first.
		must(s.Schedule(ctx, "EU", tn, e.req("m1", "US")))(t)
		got, _ := s.GetRehearsal(r.ID)
		if got.State != RehearsalCancelled || !strings.Contains(got.Detail, "real migration") {
			t.Fatalf("rehearsal after the schedule = %+v, want cancelled for the real migration", got)
		}
		e.mustNoTenant("US", "acme")
		mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
		must(s.Commit(ctx, "EU", "acme", "m1"))(t)
		if st := e.mustTenantState("US", "acme"); st.State != realmhook.TenantActive {
			t.Errorf("target tenant %s after the real migration", st.State)
		}
		if n := e.rowCount("US", "acme"); n != 12 {
			t.Errorf("target holds %d rows after the real migration, want 12", n)
		}
	})
}
