package migration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// mustOutbox fails unless realm's outbox holds exactly the given events of
// acme, oldest first, as "type realm from→to".
func (e *env) mustOutbox(realm string, want ...string) {
	e.t.Helper()
	var got []string
	for {
		evs, err := e.stores[realm].NextEvents(e.t.Context(), e.clock.Now().Add(time.Hour), 10)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			if ev.ClientKey != "acme" || ev.ProductBaseURL == "" || ev.MigrationID == "" || !ev.At.Equal(e.clock.Now()) {
				e.t.Errorf("event %+v", ev)
			}
			got = append(got, fmt.Sprintf("%s %s %s→%s", ev.Type, ev.Realm, ev.From, ev.To))
			if err := e.stores[realm].DeleteEvent(e.t.Context(), ev.Seq); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		e.t.Fatalf("outbox of %s = %v, want %v", realm, got, want)
	}
}

func TestEvents_CommitAnnouncedToBothRealms(t *testing.T) {
	e := newEnv(t, "EU", "US")
	cfg := e.cfg
	cfg.Events = true
	s := e.service(cfg, nil)
	e.run(s)
	ctx := t.Context()
	tn := e.mustTenant("EU", "acme", 3, 4)
	mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
	// The hooks again, as the host may send them: nothing more is announced.
	must(s.Start(ctx, "EU", tn, e.req("m1", "US")))(t)
	e.mustOutbox("EU", "migration.started EU EU→US")
	e.mustOutbox("US")
	must(s.Commit(ctx, "EU", "acme", "m1"))(t)
	must(s.Commit(ctx, "EU", "acme", "m1"))(t)
	e.mustOutbox("EU", "migration.committed EU EU→US")
	e.mustOutbox("US", "migration.committed US EU→US")
}

func TestEvents_RollbackAnnouncedToSource(t *testing.T) {
	e := newEnv(t, "EU", "US")
	cfg := e.cfg
	cfg.Events = true
	s := e.service(cfg, nil)
	e.run(s)
	tn := e.mustTenant("EU", "acme", 3, 4)
	mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
	must(s.Rollback(t.Context(), "EU", "acme", "m1"))(t)
	must(s.Rollback(t.Context(), "EU", "acme", "m1"))(t)
	e.mustOutbox("EU", "migration.started EU EU→US", "migration.rolled-back EU EU→US")
	e.mustOutbox("US")
}

func TestEvents_SameRealm(t *testing.T) {
	e := newEnv(t, "EU", "US")
	cfg := e.cfg
	cfg.Events = true
	s := e.service(cfg, nil)
	tn := e.mustTenant("EU", "acme", 1, 1)
	must(s.Schedule(t.Context(), "EU", tn, e.req("m1", "EU")))(t)
	must(s.Start(t.Context(), "EU", tn, e.req("m1", "EU")))(t)
	must(s.Commit(t.Context(), "EU", "acme", "m1"))(t)
	e.mustOutbox("EU", "migration.started EU EU→EU", "migration.committed EU EU→EU")
}

func TestEvents_NoneWhenOff(t *testing.T) {
	e := newEnv(t, "EU", "US")
	s := e.service(e.cfg, nil)
	e.run(s)
	tn := e.mustTenant("EU", "acme", 3, 4)
	mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
	must(s.Commit(t.Context(), "EU", "acme", "m1"))(t)
	for _, r := range []string{"EU", "US"} {
		if n, err := e.stores[r].CountEvents(t.Context()); err != nil || len(n) != 0 {
			t.Fatalf("outbox of %s with events off: %v, %v", r, n, err)
		}
	}
}
