package migration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// mustMigrate runs one migration from schedule to ready-to-commit.
func mustMigrate(t *testing.T, s *Service, from string, tn *realmhook.Tenant, req Request) *realmhook.Migration {
	t.Helper()
	ctx := t.Context()
	m := must(s.Schedule(ctx, from, tn, req))(t)
	if m.State != realmhook.MigrationScheduled || m.SourceRealm != from || m.TargetRealm != req.Location {
		t.Fatalf("scheduled migration = %+v", m)
	}
	must(s.Start(ctx, from, tn, req))(t)
	return mustWait(t, s, from, tn.ClientKey, req.MigrationID, realmhook.MigrationReadyToCommit, realmhook.MigrationFailed)
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t, "EU", "US")
	s := e.service(e.cfg, nil)
	e.run(s)
	ctx := t.Context()
	tn := e.mustTenant("EU", "acme", 11, 25)
	bystander := e.mustTenant("US", "other", 4, 7)
	bystanderSums := e.sums("US", bystander.ClientKey)
	euSums := e.sums("EU", "acme")

	// EU → US.
	m := mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
	if m.State != realmhook.MigrationReadyToCommit {
		t.Fatalf("migration = %s (%s), want ready-to-commit", m.State, m.Message)
	}
	if m.Progress.RowsTotal != 36 || m.Progress.RowsCopied != 36 || m.Progress.TablesDone != 2 || m.Progress.TablesTotal != 2 {
		t.Fatalf("progress = %+v, want 36 of 36 rows, 2 of 2 tables", m.Progress)
	}
	if got := e.mustTenantState("US", "acme"); got.State != realmhook.TenantIncoming || got.SharedSecret != tn.SharedSecret {
		t.Fatalf("target tenant before commit = %s (secret kept: %v), want incoming", got.State, got.SharedSecret == tn.SharedSecret)
	}
	if _, err := e.stores["US"].PutProperty(ctx, "acme", "x", []byte(`1`)); err == nil {
		t.Fatal("the target accepted a write before commit")
	}
	m = must(s.Commit(ctx, "EU", "acme", "m1"))(t)
	if m.State != realmhook.MigrationCommitted {
		t.Fatalf("commit = %s", m.State)
	}
	us := e.mustTenantState("US", "acme")
	if us.State != realmhook.TenantActive || us.MigrationID != "" || us.SharedSecret != tn.SharedSecret || us.BaseURL != tn.BaseURL {
		t.Fatalf("target tenant after commit = %+v", us)
	}
	eu := e.mustTenantState("EU", "acme")
	if eu.State != realmhook.TenantMoved || eu.MovedTo != "US" || eu.MigrationID != "" || !eu.PurgeAfter.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("source tenant after commit = %+v", eu)
	}
	if got := e.sums("US", "acme"); fmt.Sprint(got) != fmt.Sprint(euSums) {
		t.Fatalf("target data = %v, want %v", got, euSums)
	}
	if got := e.sums("EU", "acme"); fmt.Sprint(got) != fmt.Sprint(euSums) {
		t.Fatalf("source data changed by the migration: %v, want %v", got, euSums)
	}
	// The target serves the tenant and keeps the committed record.
	must(e.stores["US"].PutProperty(ctx, "acme", "after-move", []byte(`"us"`)))(t)
	if got := must(s.Status(ctx, "US", "acme", "m1"))(t); got.State != realmhook.MigrationCommitted {
		t.Fatalf("status in target = %s", got.State)
	}
	ev := must(s.Events(ctx, "US", "acme", "m1"))(t)
	var path []string
	for _, x := range ev {
		path = append(path, string(x.To))
	}
	if want := "scheduled copying verifying ready-to-commit committing committed"; strings.Join(path, " ") != want {
		t.Fatalf("events = %v, want %s", path, want)
	}

	// And back: US → EU, over the moved copy EU still holds.
	usSums := e.sums("US", "acme")
	m = mustMigrate(t, s, "US", us, e.req("m2", "EU"))
	if m.State != realmhook.MigrationReadyToCommit {
		t.Fatalf("migration back = %s (%s)", m.State, m.Message)
	}
	must(s.Commit(ctx, "US", "acme", "m2"))(t)
	if got := e.mustTenantState("EU", "acme"); got.State != realmhook.TenantActive {
		t.Fatalf("EU tenant after migrating back = %s", got.State)
	}
	if got := e.mustTenantState("US", "acme"); got.State != realmhook.TenantMoved || got.MovedTo != "EU" {
		t.Fatalf("US tenant after migrating back = %+v", got)
	}
	if got := e.sums("EU", "acme"); fmt.Sprint(got) != fmt.Sprint(usSums) {
		t.Fatalf("EU data = %v, want US data %v", got, usSums)
	}
	if _, err := e.stores["EU"].GetProperty(ctx, "acme", "after-move"); err != nil {
		t.Fatalf("a write made in US did not come back: %v", err)
	}
	if got := e.sums("US", bystander.ClientKey); fmt.Sprint(got) != fmt.Sprint(bystanderSums) {
		t.Fatalf("another tenant's rows changed: %v, want %v", got, bystanderSums)
	}
}

func TestSameRealm(t *testing.T) {
	e := newEnv(t, "EU", "US")
	s := e.service(e.cfg, nil)
	ctx := t.Context()
	tn := e.mustTenant("EU", "acme", 3, 3)
	must(s.Schedule(ctx, "EU", tn, e.req("m1", "EU")))(t)
	m := must(s.Start(ctx, "EU", tn, e.req("m1", "EU")))(t)
	if m.State != realmhook.MigrationReadyToCommit || m.Progress.RowsCopied != 0 {
		t.Fatalf("same-realm start = %s, %+v; want ready-to-commit with nothing copied", m.State, m.Progress)
	}
	if e.mustTenantState("EU", "acme").MigrationID != "m1" {
		t.Fatal("tenant not frozen by a same-realm start")
	}
	m = must(s.Commit(ctx, "EU", "acme", "m1"))(t)
	if got := e.mustTenantState("EU", "acme"); m.State != realmhook.MigrationCommitted || got.State != realmhook.TenantActive || got.Frozen() {
		t.Fatalf("after same-realm commit: migration %s, tenant %+v", m.State, got)
	}
	e.mustNoTenant("US", "acme")
}

func TestErrorCodes(t *testing.T) {
	e := newEnv(t, "EU", "US")
	ctx := t.Context()
	tn := e.mustTenant("EU", "acme", 1, 1)
	other := e.mustTenant("EU", "other", 1, 1)
	s := e.service(e.cfg, nil)

	one := e.cfg
	one.MaxConcurrent = 1
	limited := e.service(one, nil)
	must(limited.Schedule(ctx, "EU", other, e.req("busy", "US")))(t)

	off := e.cfg
	off.Enabled = false
	disabled := e.service(off, nil)

	bad := func(mut func(*Request)) Request {
		r := e.req("m1", "US")
		mut(&r)
		return r
	}
	cases := []struct {
		name string
		call func() error
		want string
		code string // realmhook code, "" to skip
	}{
		{"StartNotScheduled", func() error { _, err := s.Start(ctx, "EU", tn, e.req("nope", "US")); return err }, realmhook.ResponseNotScheduled, realmhook.ENOTFOUND},
		{"StatusNotScheduled", func() error { _, err := s.Status(ctx, "EU", "acme", "nope"); return err }, realmhook.ResponseNotScheduled, realmhook.ENOTFOUND},
		{"CommitNotScheduled", func() error { _, err := s.Commit(ctx, "EU", "acme", "nope"); return err }, realmhook.ResponseNotScheduled, realmhook.ENOTFOUND},
		{"RollbackNotScheduled", func() error { _, err := s.Rollback(ctx, "EU", "acme", "nope"); return err }, realmhook.ResponseNotScheduled, realmhook.ENOTFOUND},
		{"RealmNotSupported", func() error { _, err := s.Schedule(ctx, "EU", tn, e.req("m1", "AU")); return err }, realmhook.ResponseRealmNotSupported, ""},
		{"Disabled", func() error { _, err := disabled.Schedule(ctx, "EU", tn, e.req("m1", "US")); return err }, realmhook.ResponseNotSupported, ""},
		{"TooManyConcurrent", func() error { _, err := limited.Schedule(ctx, "EU", tn, e.req("m1", "US")); return err }, realmhook.ResponseTooManyConcurrent, ""},
		{"MissingID", func() error {
			_, err := s.Schedule(ctx, "EU", tn, bad(func(r *Request) { r.MigrationID = "" }))
			return err
		}, realmhook.ResponseOther, realmhook.EINVALID},
		{"BadLocation", func() error {
			_, err := s.Schedule(ctx, "EU", tn, bad(func(r *Request) { r.Location = "../EU" }))
			return err
		}, realmhook.ResponseOther, realmhook.EINVALID},
		{"EndBeforeStart", func() error {
			_, err := s.Schedule(ctx, "EU", tn, bad(func(r *Request) { r.EndTime = r.StartTime.Add(-time.Minute) }))
			return err
		}, realmhook.ResponseOther, realmhook.EINVALID},
		{"NilTenant", func() error { _, err := s.Schedule(ctx, "EU", nil, e.req("m1", "US")); return err }, realmhook.ResponseOther, realmhook.EINVALID},
		{"UnservedRealm", func() error { _, err := s.Schedule(ctx, "JP", tn, e.req("m1", "US")); return err }, realmhook.ResponseOther, realmhook.EINVALID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			mustResponse(t, err, tc.want)
			if tc.code != "" && realmhook.ErrorCode(err) != tc.code {
				t.Fatalf("code = %s, want %s", realmhook.ErrorCode(err), tc.code)
			}
			if realmhook.ErrorMessage(err) == "" || realmhook.ErrorMessage(err) == "internal error" {
				t.Fatalf("no message for a person: %v", err)
			}
		})
	}

	t.Run("OtherMigrationOfTenant", func(t *testing.T) {
		must(s.Schedule(ctx, "EU", tn, e.req("first", "US")))(t)
		_, err := s.Schedule(ctx, "EU", tn, e.req("second", "US"))
		mustResponse(t, err, realmhook.ResponseOther)
		if realmhook.ErrorCode(err) != realmhook.ECONFLICT || !strings.Contains(err.Error(), "first") {
			t.Fatalf("err = %v, want ECONFLICT naming migration first", err)
		}
	})
	t.Run("CommitNotReady", func(t *testing.T) {
		_, err := s.Commit(ctx, "EU", "acme", "first")
		mustResponse(t, err, realmhook.ResponseOther)
	})
	t.Run("StartAfterRollback", func(t *testing.T) {
		must(s.Rollback(ctx, "EU", "acme", "first"))(t)
		_, err := s.Start(ctx, "EU", tn, e.req("first", "US"))
		mustResponse(t, err, realmhook.ResponseOther)
	})
	t.Run("RescheduleOtherTarget", func(t *testing.T) {
		_, err := s.Schedule(ctx, "EU", tn, e.req("first", "EU"))
		mustResponse(t, err, realmhook.ResponseOther)
	})
	t.Run("CopyConflict", func(t *testing.T) {
		// The tenant is already active in the target: the copy fails with E9999.
		e.mustTenant("US", "acme", 2, 2)
		m := mustMigrate(t, s, "EU", tn, e.req("conflict", "US"))
		if m.State != realmhook.MigrationFailed || m.ErrorResponseCode != realmhook.ResponseOther || !strings.Contains(m.Message, "active") {
			t.Fatalf("migration = %s %s %q, want failed E9999 naming the active tenant", m.State, m.ErrorResponseCode, m.Message)
		}
	})
}

func TestHooksTwice(t *testing.T) {
	e := newEnv(t, "EU", "US")
	s := e.service(e.cfg, nil)
	e.run(s)
	ctx := t.Context()
	tn := e.mustTenant("EU", "acme", 5, 5)
	twice := func(name string, call func() (*realmhook.Migration, error)) *realmhook.Migration {
		t.Helper()
		a := must(call())(t)
		b := must(call())(t)
		if a.ID != b.ID || a.TargetRealm != b.TargetRealm {
			t.Fatalf("%s twice: %+v then %+v", name, a, b)
		}
		return b
	}
	m := twice("schedule", func() (*realmhook.Migration, error) { return s.Schedule(ctx, "EU", tn, e.req("m1", "US")) })
	if m.State != realmhook.MigrationScheduled {
		t.Fatalf("schedule twice left %s", m.State)
	}
	twice("start", func() (*realmhook.Migration, error) { return s.Start(ctx, "EU", tn, e.req("m1", "US")) })
	mustWait(t, s, "EU", "acme", "m1", realmhook.MigrationReadyToCommit)
	twice("status", func() (*realmhook.Migration, error) { return s.Status(ctx, "EU", "acme", "m1") })
	twice("start again", func() (*realmhook.Migration, error) { return s.Start(ctx, "EU", tn, e.req("m1", "US")) })
	m = twice("commit", func() (*realmhook.Migration, error) { return s.Commit(ctx, "EU", "acme", "m1") })
	if m.State != realmhook.MigrationCommitted {
		t.Fatalf("commit twice left %s", m.State)
	}
	// After the commit the host finds the tenant in US.
	if got := must(s.Commit(ctx, "US", "acme", "m1"))(t); got.State != realmhook.MigrationCommitted {
		t.Fatalf("commit at the target = %s", got.State)
	}
	if _, err := s.Rollback(ctx, "EU", "acme", "m1"); ResponseCode(err) != realmhook.ResponseOther {
		t.Fatalf("rollback after commit = %v, want E9999", err)
	}
	if got := e.rowCount("US", "acme"); got != 10 {
		t.Fatalf("target rows = %d, want 10", got)
	}

	// Rollback twice, on a second tenant.
	tn2 := e.mustTenant("EU", "beta", 2, 2)
	must(s.Schedule(ctx, "EU", tn2, e.req("r1", "US")))(t)
	must(s.Start(ctx, "EU", tn2, e.req("r1", "US")))(t)
	m = twice("rollback", func() (*realmhook.Migration, error) { return s.Rollback(ctx, "EU", "beta", "r1") })
	if m.State != realmhook.MigrationRolledBack {
		t.Fatalf("rollback twice left %s", m.State)
	}
}

// wrapUS decorates only the US peer.
func wrapUS(p *gatedPeer) func(string, Peer) Peer {
	return func(realm string, inner Peer) Peer {
		if realm != "US" {
			return inner
		}
		p.Peer = inner
		return p
	}
}

func TestRollback(t *testing.T) {
	cases := []struct {
		name  string
		state realmhook.MigrationState
		setup func(t *testing.T, e *env, s *Service, g *gatedPeer, tn *realmhook.Tenant)
	}{
		{"FromScheduled", realmhook.MigrationScheduled, func(t *testing.T, e *env, s *Service, g *gatedPeer, tn *realmhook.Tenant) {
			must(s.Schedule(t.Context(), "EU", tn, e.req("m1", "US")))(t)
		}},
		{"FromCopying", realmhook.MigrationCopying, func(t *testing.T, e *env, s *Service, g *gatedPeer, tn *realmhook.Tenant) {
			g.pass = 3
			must(s.Schedule(t.Context(), "EU", tn, e.req("m1", "US")))(t)
			must(s.Start(t.Context(), "EU", tn, e.req("m1", "US")))(t)
			mustBlocked(t, g)
		}},
		{"FromVerifying", realmhook.MigrationVerifying, func(t *testing.T, e *env, s *Service, g *gatedPeer, tn *realmhook.Tenant) {
			g.holdChecksum = true
			must(s.Schedule(t.Context(), "EU", tn, e.req("m1", "US")))(t)
			must(s.Start(t.Context(), "EU", tn, e.req("m1", "US")))(t)
			mustBlocked(t, g)
		}},
		{"FromReadyToCommit", realmhook.MigrationReadyToCommit, func(t *testing.T, e *env, s *Service, g *gatedPeer, tn *realmhook.Tenant) {
			mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
		}},
		{"FromFailed", realmhook.MigrationFailed, func(t *testing.T, e *env, s *Service, g *gatedPeer, tn *realmhook.Tenant) {
			g.pass = 2
			must(s.Schedule(t.Context(), "EU", tn, e.req("m1", "US")))(t)
			must(s.Start(t.Context(), "EU", tn, e.req("m1", "US")))(t)
			mustBlocked(t, g)
			e.clock.Advance(2 * time.Hour)
			mustWait(t, s, "EU", "acme", "m1", realmhook.MigrationFailed)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "EU", "US")
			ctx := t.Context()
			g := newGatedPeer(nil, 1<<30)
			cfg := e.cfg
			cfg.LeaseTTL = 40 * time.Millisecond
			s := e.service(cfg, wrapUS(g))
			e.run(s)
			tn := e.mustTenant("EU", "acme", 8, 9)
			before := e.sums("EU", "acme")
			tc.setup(t, e, s, g, tn)
			if got := must(s.Status(ctx, "EU", "acme", "m1"))(t); got.State != tc.state {
				t.Fatalf("before rollback: %s, want %s", got.State, tc.state)
			}
			m := must(s.Rollback(ctx, "EU", "acme", "m1"))(t)
			if m.State != realmhook.MigrationRolledBack {
				t.Fatalf("rollback = %s", m.State)
			}
			e.mustNoTenant("US", "acme")
			if n := e.rowCount("US", "acme"); n != 0 {
				t.Fatalf("target keeps %d rows after rollback", n)
			}
			src := e.mustTenantState("EU", "acme")
			if src.State != realmhook.TenantActive || src.Frozen() {
				t.Fatalf("source tenant after rollback = %+v", src)
			}
			if got := e.sums("EU", "acme"); fmt.Sprint(got) != fmt.Sprint(before) {
				t.Fatalf("source data changed: %v, want %v", got, before)
			}
			must(e.stores["EU"].PutProperty(ctx, "acme", "after", []byte(`true`)))(t)
		})
	}
}

func TestWriteFreeze(t *testing.T) {
	e := newEnv(t, "EU", "US")
	ctx := t.Context()
	g := newGatedPeer(nil, 2)
	s := e.service(e.cfg, wrapUS(g))
	tn := e.mustTenant("EU", "acme", 4, 4)
	must(s.Schedule(ctx, "EU", tn, e.req("m1", "US")))(t)
	must(e.stores["EU"].PutProperty(ctx, "acme", "before-start", []byte(`1`)))(t)
	must(s.Start(ctx, "EU", tn, e.req("m1", "US")))(t)
	mustBlocked(t, g)
	_, err := e.stores["EU"].PutProperty(ctx, "acme", "during", []byte(`1`))
	if realmhook.ErrorCode(err) != realmhook.EMIGRATING {
		t.Fatalf("PutProperty while copying = %v, want EMIGRATING", err)
	}
	if err := e.stores["EU"].DeleteProperty(ctx, "acme", "before-start"); realmhook.ErrorCode(err) != realmhook.EMIGRATING {
		t.Fatalf("DeleteProperty while copying = %v, want EMIGRATING", err)
	}
	must(s.Rollback(ctx, "EU", "acme", "m1"))(t)
	must(e.stores["EU"].PutProperty(ctx, "acme", "after", []byte(`1`)))(t)
}

func TestWindowExpiry(t *testing.T) {
	cases := []struct {
		name  string
		start bool
	}{{"WhileCopying", true}, {"NeverStarted", false}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "EU", "US")
			ctx := t.Context()
			g := newGatedPeer(nil, 2)
			cfg := e.cfg
			cfg.LeaseTTL = 40 * time.Millisecond // the watchdog polls every 20ms
			s := e.service(cfg, wrapUS(g))
			e.run(s)
			tn := e.mustTenant("EU", "acme", 4, 10)
			must(s.Schedule(ctx, "EU", tn, e.req("m1", "US")))(t)
			if tc.start {
				must(s.Start(ctx, "EU", tn, e.req("m1", "US")))(t)
				mustBlocked(t, g)
			}
			if got := must(s.Status(ctx, "EU", "acme", "m1"))(t); got.State == realmhook.MigrationFailed {
				t.Fatal("failed before the window ended")
			}
			e.clock.Advance(time.Hour)
			m := mustWait(t, s, "EU", "acme", "m1", realmhook.MigrationFailed)
			if m.ErrorResponseCode != realmhook.ResponseOther || !strings.Contains(m.Message, "window ended") {
				t.Fatalf("failed with %s %q, want E9999 window ended", m.ErrorResponseCode, m.Message)
			}
		})
	}
}

// mustCrashMidNotes runs a copy of acme (10 properties, 40 notes) with 3-row
// batches and a checkpoint every 6 rows until the gate stops it in the middle
// of the notes, with the last checkpoint at 16 rows, then crashes it (the
// job is cancelled), and returns the migration as the crash left it.
func mustCrashMidNotes(t *testing.T, e *env, afterCommit bool) *realmhook.Migration {
	t.Helper()
	ctx := t.Context()
	tn := e.mustTenant("EU", "acme", 10, 40)
	// Properties: intervals of 3+3 and 3+1 rows (checkpoints at 6 and 10);
	// notes: 3+3 (checkpoint at 16), then the gate at the 8th batch.
	g := newGatedPeer(nil, 7)
	g.afterCommit = afterCommit
	first := e.service(e.cfg, wrapUS(g))
	stop := e.run(first)
	must(first.Schedule(ctx, "EU", tn, e.req("m1", "US")))(t)
	must(first.Start(ctx, "EU", tn, e.req("m1", "US")))(t)
	mustBlocked(t, g)
	stop()
	m := must(first.Status(ctx, "EU", "acme", "m1"))(t)
	cp, err := decodeCheckpoint(m.Checkpoint)
	if err != nil || cp == nil || cp.Table != 1 || m.State != realmhook.MigrationCopying || m.Progress.RowsCopied != 16 {
		t.Fatalf("after the crash: %s, %d rows copied, checkpoint %q (%v); want copying inside notes at 16 rows",
			m.State, m.Progress.RowsCopied, m.Checkpoint, err)
	}
	return m
}

func TestResumeAfterCrash(t *testing.T) {
	cases := []struct {
		name        string
		afterCommit bool
		// written is what the target holds after the crash: only the
		// checkpointed rows when the interval's transaction rolled back, 6
		// more when the crash came between its commit and its checkpoint.
		written int64
	}{
		{"MidInterval", false, 16},
		{"BetweenCommitAndCheckpoint", true, 22},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "EU", "US")
			ctx := t.Context()
			mustCrashMidNotes(t, e, tc.afterCommit)
			if got := e.rowCount("US", "acme"); got != tc.written {
				t.Fatalf("target holds %d rows after the crash, want %d", got, tc.written)
			}

			second := e.service(e.cfg, nil)
			e.run(second)
			m := mustWait(t, second, "EU", "acme", "m1", realmhook.MigrationReadyToCommit, realmhook.MigrationFailed)
			if m.State != realmhook.MigrationReadyToCommit {
				t.Fatalf("resumed migration = %s (%s)", m.State, m.Message)
			}
			if m.Progress.RowsCopied != m.Progress.RowsTotal || m.Progress.RowsTotal != 50 {
				t.Fatalf("progress = %+v, want 50 of 50", m.Progress)
			}
			src := e.sums("EU", "acme")
			if dst := e.sums("US", "acme"); fmt.Sprint(src) != fmt.Sprint(dst) {
				t.Fatalf("target %v, source %v", dst, src)
			}
			var n int
			if err := e.dbs["US"].QueryRowContext(ctx, `SELECT COUNT(*) FROM notes WHERE tenant = 'acme'`).Scan(&n); err != nil || n != 40 {
				t.Fatalf("target notes = %d (%v), want 40", n, err)
			}
			// The checksums the copy carried across the crash are the
			// source's, every row counted once.
			cp, err := decodeCheckpoint(m.Checkpoint)
			if err != nil || cp == nil || !cp.Summed || len(cp.Sums) != 2 {
				t.Fatalf("final checkpoint %q (%v): want the sums of both tables", m.Checkpoint, err)
			}
			for i, tb := range []store.Table{store.PropertiesTable, notesTable} {
				if cp.Sums[i] != src[tb.Name] {
					t.Fatalf("checkpoint's sum of %s = %s, source's %s", tb.Name, cp.Sums[i], src[tb.Name])
				}
			}
		})
	}
}

// TestVerifyAfterResume: a copy resumed after a crash verifies with the
// checksums its checkpoint carried (or, for a checkpoint without them, by
// reading the source): an exact copy verifies equal, and a target row changed
// before the crash is still caught.
func TestVerifyAfterResume(t *testing.T) {
	cases := []struct {
		name              string
		stripSums, tamper bool
		want              realmhook.MigrationState
	}{
		{"Exact", false, false, realmhook.MigrationReadyToCommit},
		{"TargetChangedBeforeCrash", false, true, realmhook.MigrationFailed},
		{"CheckpointWithoutSums", true, false, realmhook.MigrationReadyToCommit},
		{"CheckpointWithoutSumsTargetChanged", true, true, realmhook.MigrationFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "EU", "US")
			ctx := t.Context()
			m := mustCrashMidNotes(t, e, true)
			if tc.tamper {
				// Note 2 was copied before the last checkpoint.
				if _, err := e.dbs["US"].ExecContext(ctx, `UPDATE notes SET body = 'tampered' WHERE tenant = 'acme' AND id = 2`); err != nil {
					t.Fatalf("tamper: %v", err)
				}
			}
			if tc.stripSums {
				// As a version that kept no sums would have saved it.
				cp := must(decodeCheckpoint(m.Checkpoint))(t)
				cp.Sums, cp.Summed = nil, false
				old := *m
				old.Checkpoint = must(encodeCheckpoint(*cp))(t)
				if strings.Contains(old.Checkpoint, "sums") {
					t.Fatalf("stripped checkpoint still has sums: %s", old.Checkpoint)
				}
				if err := e.stores["EU"].UpdateMigration(ctx, &old, m.State, "test: strip sums"); err != nil {
					t.Fatalf("UpdateMigration: %v", err)
				}
			}
			second := e.service(e.cfg, nil)
			e.run(second)
			got := mustWait(t, second, "EU", "acme", "m1", realmhook.MigrationReadyToCommit, realmhook.MigrationFailed)
			if got.State != tc.want {
				t.Fatalf("resumed migration = %s (%q), want %s", got.State, got.Message, tc.want)
			}
			if tc.want == realmhook.MigrationFailed && (got.ErrorResponseCode != realmhook.ResponseOther || !strings.Contains(got.Message, "table notes differs")) {
				t.Fatalf("failed with %s %q, want E9999 naming table notes", got.ErrorResponseCode, got.Message)
			}
		})
	}
}

// sourceChangePeer adds a property to the source tenant, behind the freeze's
// back, when the copy starts on the notes: after the properties were copied
// and checksummed.
type sourceChangePeer struct {
	Peer
	t    *testing.T
	env  *env
	once sync.Once
}

func (p *sourceChangePeer) CopyRows(ctx context.Context, clientKey, id string, t store.Table, cols []string, next func() ([]store.Row, error)) (int64, error) {
	if t.Name == notesTable.Name {
		p.once.Do(func() {
			if _, err := p.env.dbs["EU"].ExecContext(ctx, `INSERT INTO realmhook_properties (client_key, key, value) VALUES (?, 'zz-late', '{}')`, clientKey); err != nil {
				p.t.Errorf("change source: %v", err)
			}
		})
	}
	return p.Peer.CopyRows(ctx, clientKey, id, t, cols, next)
}

func TestSourceChangedDuringMigration(t *testing.T) {
	e := newEnv(t, "EU", "US")
	s := e.service(e.cfg, func(realm string, p Peer) Peer {
		if realm == "US" {
			return &sourceChangePeer{Peer: p, t: t, env: e}
		}
		return p
	})
	tn := e.mustTenant("EU", "acme", 4, 5)
	m := mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
	if m.State != realmhook.MigrationFailed || m.ErrorResponseCode != realmhook.ResponseOther ||
		!strings.Contains(m.Message, "source changed during migration") || !strings.Contains(m.Message, store.PropertiesTable.Name) {
		t.Fatalf("migration = %s %s %q; want failed E9999: source changed, naming %s", m.State, m.ErrorResponseCode, m.Message, store.PropertiesTable.Name)
	}
}

// tamperPeer changes one note in the target right after it is written.
type tamperPeer struct {
	Peer
	t    *testing.T
	env  *env
	once sync.Once
}

func (p *tamperPeer) CopyRows(ctx context.Context, clientKey, id string, t store.Table, cols []string, next func() ([]store.Row, error)) (int64, error) {
	n, err := p.Peer.CopyRows(ctx, clientKey, id, t, cols, next)
	if err != nil {
		return n, err
	}
	if t.Name == notesTable.Name {
		p.once.Do(func() {
			if _, err := p.env.dbs["US"].ExecContext(ctx, `UPDATE notes SET body = 'tampered' WHERE tenant = ? AND id = 1`, clientKey); err != nil {
				p.t.Errorf("tamper: %v", err)
			}
		})
	}
	return n, nil
}

func TestChecksumMismatch(t *testing.T) {
	e := newEnv(t, "EU", "US")
	s := e.service(e.cfg, func(realm string, p Peer) Peer {
		if realm == "US" {
			return &tamperPeer{Peer: p, t: t, env: e}
		}
		return p
	})
	tn := e.mustTenant("EU", "acme", 3, 5)
	m := mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
	if m.State != realmhook.MigrationFailed || m.ErrorResponseCode != realmhook.ResponseOther || !strings.Contains(m.Message, "notes") {
		t.Fatalf("migration = %s %s %q; want failed E9999 naming table notes", m.State, m.ErrorResponseCode, m.Message)
	}
	if strings.Contains(m.Message, store.PropertiesTable.Name) {
		t.Fatalf("message names the untouched properties table: %q", m.Message)
	}
	if _, err := s.Commit(t.Context(), "EU", "acme", "m1"); ResponseCode(err) != realmhook.ResponseOther {
		t.Fatalf("commit of a failed migration = %v, want E9999", err)
	}
}

func TestTargetActiveTenantUntouched(t *testing.T) {
	e := newEnv(t, "EU", "US")
	ctx := t.Context()
	s := e.service(e.cfg, nil)
	tn := e.mustTenant("EU", "acme", 5, 5)
	e.mustTenant("US", "acme", 2, 3)
	usBefore := e.sums("US", "acme")
	m := mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
	if m.State != realmhook.MigrationFailed {
		t.Fatalf("migration onto an active tenant = %s", m.State)
	}
	must(s.Rollback(ctx, "EU", "acme", "m1"))(t)
	if got := e.mustTenantState("US", "acme"); got.State != realmhook.TenantActive {
		t.Fatalf("target tenant = %s, want still active", got.State)
	}
	if got := e.sums("US", "acme"); fmt.Sprint(got) != fmt.Sprint(usBefore) {
		t.Fatalf("target rows changed: %v, want %v", got, usBefore)
	}
	// The Peer itself refuses writes to a tenant the target serves.
	if _, err := LocalPeer(e.stores["US"]).ClearRows(ctx, "acme", "m1", notesTable); realmhook.ErrorCode(err) != realmhook.ECONFLICT {
		t.Fatalf("ClearRows on an active tenant = %v, want ECONFLICT", err)
	}
	one := func() func() ([]store.Row, error) {
		rows := []store.Row{{"acme", int64(99), "x"}}
		return func() ([]store.Row, error) {
			out := rows
			rows = nil
			return out, nil
		}
	}
	if _, err := LocalPeer(e.stores["US"]).CopyRows(ctx, "acme", "m1", notesTable, []string{"tenant", "id", "body"}, one()); realmhook.ErrorCode(err) != realmhook.ECONFLICT {
		t.Fatalf("CopyRows on an active tenant = %v, want ECONFLICT", err)
	}
}

// dyingStore fails every row deletion, as a process killed mid-purge would.
type dyingStore struct{ store.Store }

var errDied = errors.New("died")

func (dyingStore) DeleteRows(context.Context, store.Table, string, store.Row) (int64, error) {
	return 0, errDied
}

func TestPurgeSweeper(t *testing.T) {
	e := newEnv(t, "EU", "US")
	ctx := t.Context()
	s := e.service(e.cfg, nil)
	tn := e.mustTenant("EU", "acme", 6, 6)
	keep := e.mustTenant("EU", "stays", 2, 2)
	mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
	must(s.Commit(ctx, "EU", "acme", "m1"))(t)

	s.sweep(ctx)
	if got := e.mustTenantState("EU", "acme"); got.State != realmhook.TenantMoved || e.rowCount("EU", "acme") != 12 {
		t.Fatal("the sweeper purged before PurgeAfter")
	}
	e.clock.Advance(25 * time.Hour)
	s.sweep(ctx)
	e.mustNoTenant("EU", "acme")
	if n := e.rowCount("EU", "acme"); n != 0 {
		t.Fatalf("%d rows of the moved tenant left after purge", n)
	}
	if n := e.rowCount("US", "acme"); n != 12 {
		t.Fatalf("purge touched the target: %d rows, want 12", n)
	}
	if n := e.rowCount("EU", keep.ClientKey); n != 4 {
		t.Fatalf("purge touched another tenant: %d rows, want 4", n)
	}

	t.Run("ByRun", func(t *testing.T) {
		tn2 := e.mustTenant("EU", "beta", 2, 2)
		mustMigrate(t, s, "EU", tn2, e.req("m2", "US"))
		must(s.Commit(ctx, "EU", "beta", "m2"))(t)
		e.clock.Advance(25 * time.Hour)
		cfg := e.cfg
		cfg.SweepInterval = 10 * time.Millisecond
		e.run(e.service(cfg, nil))
		mustEventually(t, "the sweeper to purge beta", func() bool {
			_, err := e.stores["EU"].GetTenant(ctx, "beta")
			return realmhook.ErrorCode(err) == realmhook.ENOTFOUND
		})
	})
}

func TestPurgeNow(t *testing.T) {
	e := newEnv(t, "EU", "US")
	ctx := t.Context()
	s := e.service(e.cfg, nil)
	tn := e.mustTenant("EU", "acme", 6, 6)
	keep := e.mustTenant("EU", "stays", 2, 2)

	t.Run("ActiveRefused", func(t *testing.T) {
		purged, err := s.PurgeNow(ctx, "EU", "acme")
		if realmhook.ErrorCode(err) != realmhook.ECONFLICT || purged {
			t.Fatalf("PurgeNow of an active tenant = %v, %v; want ECONFLICT", purged, err)
		}
		if n := e.rowCount("EU", "acme"); n != 12 {
			t.Fatalf("refused purge deleted rows: %d left, want 12", n)
		}
	})

	mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
	must(s.Commit(ctx, "EU", "acme", "m1"))(t)

	t.Run("MovedPurgedBeforePurgeAfter", func(t *testing.T) {
		purged, err := s.PurgeNow(ctx, "EU", "acme")
		if err != nil || !purged {
			t.Fatalf("PurgeNow = %v, %v; want true, nil", purged, err)
		}
		e.mustNoTenant("EU", "acme")
		if n := e.rowCount("EU", "acme"); n != 0 {
			t.Fatalf("%d rows of the moved tenant left after purge", n)
		}
		if n := e.rowCount("US", "acme"); n != 12 {
			t.Fatalf("purge touched the target: %d rows, want 12", n)
		}
		if n := e.rowCount("EU", keep.ClientKey); n != 4 {
			t.Fatalf("purge touched another tenant: %d rows, want 4", n)
		}
	})
	t.Run("Repeat", func(t *testing.T) {
		if purged, err := s.PurgeNow(ctx, "EU", "acme"); err != nil || purged {
			t.Fatalf("PurgeNow again = %v, %v; want false, nil", purged, err)
		}
	})
	t.Run("RealmNotServed", func(t *testing.T) {
		if _, err := s.PurgeNow(ctx, "AU", "acme"); realmhook.ErrorCode(err) != realmhook.EINVALID {
			t.Fatalf("PurgeNow in an unserved realm: %v, want EINVALID", err)
		}
	})
}

// countingPeer counts the rows written through it, shared by replicas.
type countingPeer struct {
	Peer
	rows *atomic.Int64
}

func (p countingPeer) CopyRows(ctx context.Context, clientKey, id string, t store.Table, cols []string, next func() ([]store.Row, error)) (int64, error) {
	n, err := p.Peer.CopyRows(ctx, clientKey, id, t, cols, next)
	p.rows.Add(n) // what the target committed
	return n, err
}

func TestReplicas(t *testing.T) {
	t.Run("OneJobAtATime", func(t *testing.T) {
		e := newEnv(t, "EU", "US")
		ctx := t.Context()
		var written atomic.Int64
		// A gets stuck between committing an interval and saving its
		// checkpoint, leaving rows past the checkpoint for B to trim.
		g := newGatedPeer(nil, 7)
		g.afterCommit = true
		count := func(realm string, p Peer) Peer { return countingPeer{p, &written} }
		a := e.service(e.cfg, func(realm string, p Peer) Peer { return wrapUS(g)(realm, count(realm, p)) })
		b := e.service(e.cfg, count)
		tn := e.mustTenant("EU", "acme", 10, 30)
		must(a.Schedule(ctx, "EU", tn, e.req("m1", "US")))(t)
		must(a.Start(ctx, "EU", tn, e.req("m1", "US")))(t)
		mustBlocked(t, g)
		// B looks for work while A holds the lease: it must start nothing.
		b.poll(ctx)
		b.mu.Lock()
		busy := len(b.busy)
		b.mu.Unlock()
		if busy != 0 {
			t.Fatalf("replica B started %d jobs while A held the lease", busy)
		}
		// A's lease expires (A is stuck); B takes over and finishes.
		e.clock.Advance(2 * e.cfg.LeaseTTL)
		b.poll(ctx)
		m := mustWait(t, b, "EU", "acme", "m1", realmhook.MigrationReadyToCommit, realmhook.MigrationFailed)
		if m.State != realmhook.MigrationReadyToCommit {
			t.Fatalf("taken-over migration = %s (%s)", m.State, m.Message)
		}
		close(g.release) // A's connection comes back, failed
		a.Close()
		if got := must(b.Status(ctx, "EU", "acme", "m1"))(t); got.State != realmhook.MigrationReadyToCommit {
			t.Fatalf("after A stopped: %s", got.State)
		}
		// A committed 8 batches (22 rows) before the gate, the last
		// checkpoint at 16; B re-copied from there: 40-16 rows.
		if got, want := written.Load(), int64(22+(40-16)); got != want {
			t.Fatalf("rows written = %d, want %d: a job ran twice", got, want)
		}
	})
	t.Run("BothRunning", func(t *testing.T) {
		e := newEnv(t, "EU", "US")
		ctx := t.Context()
		var written atomic.Int64
		count := func(realm string, p Peer) Peer { return countingPeer{p, &written} }
		cfg := e.cfg
		cfg.LeaseTTL = 20 * time.Millisecond // both poll every 10ms
		a, b := e.service(cfg, count), e.service(cfg, count)
		e.run(a)
		e.run(b)
		var tenants []*realmhook.Tenant
		for i := range 4 {
			tenants = append(tenants, e.mustTenant("EU", fmt.Sprintf("t%d", i), 5, 20))
		}
		for i, tn := range tenants {
			svc := []*Service{a, b}[i%2]
			must(svc.Schedule(ctx, "EU", tn, e.req("m", "US")))(t)
			must(svc.Start(ctx, "EU", tn, e.req("m", "US")))(t)
		}
		for _, tn := range tenants {
			if m := mustWait(t, a, "EU", tn.ClientKey, "m", realmhook.MigrationReadyToCommit, realmhook.MigrationFailed); m.State != realmhook.MigrationReadyToCommit {
				t.Fatalf("%s: %s (%s)", tn.ClientKey, m.State, m.Message)
			}
		}
		if got := written.Load(); got != 4*25 {
			t.Fatalf("rows written = %d, want %d: a job ran twice", got, 4*25)
		}
	})
}

func TestRunFinishesRecordedCommitAndRollback(t *testing.T) {
	e := newEnv(t, "EU", "US")
	ctx := t.Context()
	s := e.service(e.cfg, nil)
	a := e.mustTenant("EU", "commits", 3, 3)
	b := e.mustTenant("EU", "rolls", 3, 3)
	mustMigrate(t, s, "EU", a, e.req("m1", "US"))
	mustMigrate(t, s, "EU", b, e.req("m2", "US"))
	// A crash right after each decision was recorded.
	for _, c := range []struct {
		ck, id string
		to     realmhook.MigrationState
	}{{"commits", "m1", realmhook.MigrationCommitting}, {"rolls", "m2", realmhook.MigrationRollingBack}} {
		m := must(s.Status(ctx, "EU", c.ck, c.id))(t)
		if err := s.transition(ctx, e.stores["EU"], m, c.to, "test crash", nil); err != nil {
			t.Fatal(err)
		}
	}
	e.run(e.service(e.cfg, nil))
	mustWait(t, s, "EU", "commits", "m1", realmhook.MigrationCommitted)
	mustWait(t, s, "EU", "rolls", "m2", realmhook.MigrationRolledBack)
	if got := e.mustTenantState("US", "commits"); got.State != realmhook.TenantActive {
		t.Fatalf("committed tenant in target = %s", got.State)
	}
	e.mustNoTenant("US", "rolls")
	if got := e.mustTenantState("EU", "rolls"); got.State != realmhook.TenantActive || got.Frozen() {
		t.Fatalf("rolled-back tenant in source = %+v", got)
	}
}

// TestHalfDoneCommitActsOnSourceRecord: between the target's activation and
// the source's move, the target already holds a committed copy of the record.
// Hooks reaching the target (where Locate now finds the tenant) must act on
// the source's record, which still says committing.
func TestHalfDoneCommitActsOnSourceRecord(t *testing.T) {
	for _, hook := range []string{"commit", "rollback"} {
		t.Run(hook, func(t *testing.T) {
			e := newEnv(t, "EU", "US")
			ctx := t.Context()
			s := e.service(e.cfg, nil)
			tn := e.mustTenant("EU", "ck", 3, 3)
			m := mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
			// The copy job may still be winding down, and a job that sees
			// committing finishes it: stop it, and answer the hooks from a
			// fresh replica that has no job running.
			s.Close()
			s = e.service(e.cfg, nil)
			if err := s.transition(ctx, e.stores["EU"], m, realmhook.MigrationCommitting, "test: commit recorded", nil); err != nil {
				t.Fatal(err)
			}
			rec := *m
			rec.State = realmhook.MigrationCommitted
			if err := LocalPeer(e.stores["US"]).Activate(ctx, e.mustTenantState("EU", "ck"), &rec); err != nil {
				t.Fatal(err)
			}
			// A crash here: the source still has the tenant active and frozen.

			if got := must(s.Status(ctx, "US", "ck", "m1"))(t); got.State != realmhook.MigrationCommitting {
				t.Fatalf("status from the target's side = %s, want the source's committing", got.State)
			}
			switch hook {
			case "commit":
				got := must(s.Commit(ctx, "US", "ck", "m1"))(t)
				if got.State != realmhook.MigrationCommitted {
					t.Fatalf("commit = %s", got.State)
				}
				if src := e.mustTenantState("EU", "ck"); src.State != realmhook.TenantMoved || src.MovedTo != "US" || src.Frozen() {
					t.Fatalf("source tenant after the repeated commit = %+v", src)
				}
			case "rollback":
				got := must(s.Rollback(ctx, "US", "ck", "m1"))(t)
				if got.State != realmhook.MigrationRolledBack {
					t.Fatalf("rollback = %s", got.State)
				}
				if src := e.mustTenantState("EU", "ck"); src.State != realmhook.TenantActive || src.Frozen() {
					t.Fatalf("source tenant after rollback = %+v", src)
				}
				e.mustNoTenant("US", "ck")
			}
		})
	}
}

// TestUninstalledDataInTargetIsNotOverwritten: data a realm keeps for a
// re-install is not a migration's to clear, nor a rollback's to delete.
func TestUninstalledDataInTargetIsNotOverwritten(t *testing.T) {
	e := newEnv(t, "EU", "US")
	ctx := t.Context()
	s := e.service(e.cfg, nil)
	e.run(s)
	e.mustTenant("US", "ck", 2, 4)
	if _, err := e.stores["US"].UpdateTenant(ctx, "ck", func(tn *realmhook.Tenant) error {
		tn.State = realmhook.TenantUninstalled
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := e.rowCount("US", "ck")
	tn := e.mustTenant("EU", "ck", 3, 3)
	m := mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
	if m.State != realmhook.MigrationFailed || !strings.Contains(m.Message, "uninstall") {
		t.Fatalf("migration onto kept data = %s %q, want failed naming the kept data", m.State, m.Message)
	}
	must(s.Rollback(ctx, "EU", "ck", "m1"))(t)
	if got := e.mustTenantState("US", "ck"); got.State != realmhook.TenantUninstalled {
		t.Fatalf("kept record after rollback = %s", got.State)
	}
	if got := e.rowCount("US", "ck"); got != before {
		t.Fatalf("kept rows after rollback = %d, want %d", got, before)
	}
}

// TestPurgeAndMigrationBackDoNotOverlap: the sweeper moves a moved record to
// purging before deleting its rows, and a migration back into that realm takes
// the record under the same lock, so one of them backs off.
func TestPurgeAndMigrationBackDoNotOverlap(t *testing.T) {
	e := newEnv(t, "EU", "US")
	ctx := t.Context()
	s := e.service(e.cfg, nil)
	tn := e.mustTenant("EU", "ck", 3, 3)
	mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
	must(s.Commit(ctx, "EU", "ck", "m1"))(t)
	e.clock.Advance(25 * time.Hour)

	t.Run("PurgeUnderWayRefusesMigrationBack", func(t *testing.T) {
		// A sweeper that began the purge and then died.
		if err := s.purgeTenant(ctx, dyingStore{e.stores["EU"]}, "ck"); !errors.Is(err, errDied) {
			t.Fatalf("purge = %v, want it to die half-way", err)
		}
		if got := e.mustTenantState("EU", "ck"); got.State != realmhook.TenantPurging || got.Frozen() || got.MovedTo != "US" {
			t.Fatalf("half-purged record is %s (frozen %v, moved to %q), want purging, not frozen, moved to US", got.State, got.Frozen(), got.MovedTo)
		}
		back := mustMigrate(t, s, "US", e.mustTenantState("US", "ck"), e.req("m2", "EU"))
		if back.State != realmhook.MigrationFailed || !strings.Contains(back.Message, "previous copy") {
			t.Fatalf("migration back during a purge = %s %q, want failed", back.State, back.Message)
		}
		must(s.Rollback(ctx, "US", "ck", "m2"))(t)
		// The next sweep finishes the interrupted purge.
		s.sweep(ctx)
		e.mustNoTenant("EU", "ck")
		if n := e.rowCount("EU", "ck"); n != 0 {
			t.Fatalf("%d rows left after the purge was finished", n)
		}
	})

	t.Run("MigrationBackIsNotPurged", func(t *testing.T) {
		back := mustMigrate(t, s, "US", e.mustTenantState("US", "ck"), e.req("m3", "EU"))
		if back.State != realmhook.MigrationReadyToCommit {
			t.Fatalf("migration back = %s %q", back.State, back.Message)
		}
		// The incoming copy is past the old PurgeAfter, but it is no longer a
		// moved record: the sweeper leaves it alone.
		s.sweep(ctx)
		if n := e.rowCount("EU", "ck"); n != 6 {
			t.Fatalf("incoming copy has %d rows after a sweep, want 6", n)
		}
		must(s.Commit(ctx, "US", "ck", "m3"))(t)
		if got := e.mustTenantState("EU", "ck"); got.State != realmhook.TenantActive {
			t.Fatalf("tenant back in EU = %s", got.State)
		}
	})
}

// TestStoppedServiceTellsHostToRetry: a hook that reaches a Service being shut
// down is EUNAVAILABLE, answered without an errorResponseCode, so the host
// retries it (on another replica, or after the restart) instead of failing
// the migration.
func TestStoppedServiceTellsHostToRetry(t *testing.T) {
	e := newEnv(t, "EU", "US")
	ctx := t.Context()
	s := e.service(e.cfg, nil)
	tn := e.mustTenant("EU", "ck", 1, 1)
	must(s.Schedule(ctx, "EU", tn, e.req("m1", "US")))(t)
	s.Close()
	_, err := s.Rollback(ctx, "EU", "ck", "m1")
	if realmhook.ErrorCode(err) != realmhook.EUNAVAILABLE || ResponseCode(err) != "" {
		t.Fatalf("rollback on a stopped service = %v (response code %q), want EUNAVAILABLE without one", err, ResponseCode(err))
	}
}

// TestMaxConcurrent_Replicas: two replicas of one realm, each with its own
// connection to the realm's database, schedule at once and take exactly
// MaxConcurrent slots between them.
func TestMaxConcurrent_Replicas(t *testing.T) {
	e := newEnv(t, "EU", "US")
	cfg := e.cfg
	cfg.MaxConcurrent = 2
	replicas := []*Service{e.replica(cfg, "EU"), e.replica(cfg, "EU")}
	const tenants = 8
	var tns []*realmhook.Tenant
	for i := range tenants {
		tns = append(tns, e.mustTenant("EU", fmt.Sprintf("t%d", i), 1, 0))
	}
	errs := make([]error, tenants)
	var wg sync.WaitGroup
	for i, tn := range tns {
		wg.Go(func() {
			_, errs[i] = replicas[i%2].Schedule(t.Context(), "EU", tn, e.req("m"+tn.ClientKey, "US"))
		})
	}
	wg.Wait()
	scheduled := 0
	for i, err := range errs {
		switch ResponseCode(err) {
		case "":
			if err != nil {
				t.Fatalf("schedule %d: %v", i, err)
			}
			scheduled++
		case realmhook.ResponseTooManyConcurrent:
		default:
			t.Fatalf("schedule %d: %v (code %s), want success or E0004", i, err, ResponseCode(err))
		}
	}
	if scheduled != cfg.MaxConcurrent {
		t.Fatalf("%d schedules landed across two replicas, want %d", scheduled, cfg.MaxConcurrent)
	}
}

// TestMaxConcurrent_EveryServedRealm: in a process serving several realms,
// migrations from every one of them count against one MaxConcurrent.
func TestMaxConcurrent_EveryServedRealm(t *testing.T) {
	e := newEnv(t, "EU", "US")
	cfg := e.cfg
	cfg.MaxConcurrent = 2
	s := e.service(cfg, nil)
	ctx := t.Context()
	must(s.Schedule(ctx, "EU", e.mustTenant("EU", "a", 1, 0), e.req("ma", "US")))(t)
	must(s.Schedule(ctx, "US", e.mustTenant("US", "b", 1, 0), e.req("mb", "EU")))(t)
	_, err := s.Schedule(ctx, "US", e.mustTenant("US", "c", 1, 0), e.req("mc", "EU"))
	mustResponse(t, err, realmhook.ResponseTooManyConcurrent)
	if !strings.Contains(realmhook.ErrorMessage(err), "2 migrations are scheduled or running; the limit is 2") {
		t.Fatalf("message = %q", realmhook.ErrorMessage(err))
	}
	_, err = s.Schedule(ctx, "EU", e.mustTenant("EU", "d", 1, 0), e.req("md", "US"))
	mustResponse(t, err, realmhook.ResponseTooManyConcurrent)
}
