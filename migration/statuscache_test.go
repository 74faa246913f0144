package migration

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
)

func TestStatusCache(t *testing.T) {
	ctx := context.Background()
	rec := func(state realmhook.MigrationState) *realmhook.Migration {
		return &realmhook.Migration{ClientKey: "ck", ID: "m1", State: state}
	}
	t.Run("ReadOncePerMaxStale", func(t *testing.T) {
		clock := &clock{now: time.Unix(1700000000, 0)}
		c := newStatusCache(clock.Now)
		var loads atomic.Int32
		load := func(context.Context) (*realmhook.Migration, error) {
			loads.Add(1)
			return rec(realmhook.MigrationCopying), nil
		}
		for range 5 {
			if m, err := c.get(ctx, "ck", "m1", load); err != nil || m.State != realmhook.MigrationCopying {
				t.Fatalf("get = %v, %v", m, err)
			}
		}
		if n := loads.Load(); n != 1 {
			t.Fatalf("%d loads within StatusMaxStale, want 1", n)
		}
		clock.Advance(StatusMaxStale)
		if _, err := c.get(ctx, "ck", "m1", load); err != nil {
			t.Fatal(err)
		}
		if n := loads.Load(); n != 2 {
			t.Fatalf("%d loads after StatusMaxStale, want 2", n)
		}
	})
	t.Run("PublishSeenAtOnce", func(t *testing.T) {
		clock := &clock{now: time.Unix(1700000000, 0)}
		c := newStatusCache(clock.Now)
		load := func(context.Context) (*realmhook.Migration, error) { return rec(realmhook.MigrationCopying), nil }
		if _, err := c.get(ctx, "ck", "m1", load); err != nil {
			t.Fatal(err)
		}
		c.publish(rec(realmhook.MigrationReadyToCommit))
		if m, err := c.get(ctx, "ck", "m1", load); err != nil || m.State != realmhook.MigrationReadyToCommit {
			t.Fatalf("get after publish = %v, %v; want ready-to-commit", m, err)
		}
	})
	t.Run("OlderReadDoesNotReplacePublish", func(t *testing.T) {
		clock := &clock{now: time.Unix(1700000000, 0)}
		c := newStatusCache(clock.Now)
		reading, release := make(chan struct{}), make(chan struct{})
		load := func(context.Context) (*realmhook.Migration, error) {
			close(reading)
			<-release
			return rec(realmhook.MigrationCopying), nil // read before the publish below
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = c.get(ctx, "ck", "m1", load)
		}()
		<-reading
		c.publish(rec(realmhook.MigrationVerifying))
		close(release)
		<-done
		m, err := c.get(ctx, "ck", "m1", func(context.Context) (*realmhook.Migration, error) {
			return nil, errors.New("no load expected")
		})
		if err != nil || m.State != realmhook.MigrationVerifying {
			t.Fatalf("get = %v, %v; want the published verifying", m, err)
		}
	})
	t.Run("ErrorsNotCached", func(t *testing.T) {
		clock := &clock{now: time.Unix(1700000000, 0)}
		c := newStatusCache(clock.Now)
		fail := realmhook.Errorf(realmhook.EUNAVAILABLE, "down")
		if _, err := c.get(ctx, "ck", "m1", func(context.Context) (*realmhook.Migration, error) { return nil, fail }); !errors.Is(err, fail) {
			t.Fatalf("err = %v, want the load's", err)
		}
		m, err := c.get(ctx, "ck", "m1", func(context.Context) (*realmhook.Migration, error) { return rec(realmhook.MigrationCopying), nil })
		if err != nil || m.State != realmhook.MigrationCopying {
			t.Fatalf("get after a failed load = %v, %v", m, err)
		}
	})
	t.Run("ConcurrentCallersShareOneLoad", func(t *testing.T) {
		clock := &clock{now: time.Unix(1700000000, 0)}
		c := newStatusCache(clock.Now)
		var loads atomic.Int32
		release := make(chan struct{})
		load := func(context.Context) (*realmhook.Migration, error) {
			loads.Add(1)
			<-release
			return rec(realmhook.MigrationCopying), nil
		}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if _, err := c.get(ctx, "ck", "m1", load); err != nil {
					t.Error(err)
				}
			})
		}
		// Whenever each caller arrives, it either waits on the one load or
		// finds its result cached: none loads again.
		close(release)
		wg.Wait()
		if n := loads.Load(); n != 1 {
			t.Fatalf("%d loads for 20 concurrent callers, want 1", n)
		}
	})
	t.Run("CancelledCallerDoesNotFailOthers", func(t *testing.T) {
		clock := &clock{now: time.Unix(1700000000, 0)}
		c := newStatusCache(clock.Now)
		reading, release := make(chan struct{}), make(chan struct{})
		load := func(ctx context.Context) (*realmhook.Migration, error) {
			close(reading)
			<-release
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return rec(realmhook.MigrationCopying), nil
		}
		first, cancel := context.WithCancel(ctx)
		firstErr := make(chan error, 1)
		go func() { _, err := c.get(first, "ck", "m1", load); firstErr <- err }()
		<-reading
		second := make(chan error, 1)
		go func() { _, err := c.get(ctx, "ck", "m1", load); second <- err }()
		cancel()
		if err := <-firstErr; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled caller's err = %v, want context.Canceled", err)
		}
		close(release)
		if err := <-second; err != nil {
			t.Fatalf("the other caller's err = %v, want none", err)
		}
	})
}

func TestStatusCache_Bounded(t *testing.T) {
	clock := &clock{now: time.Unix(1700000000, 0)}
	c := newStatusCache(clock.Now)
	for i := range maxStatusEntries + 10 {
		c.publish(&realmhook.Migration{ClientKey: "ck", ID: string(rune('a'+i%26)) + time.Duration(i).String(), State: realmhook.MigrationCopying})
	}
	if n := len(c.entries); n > maxStatusEntries {
		t.Fatalf("%d entries, want at most %d", n, maxStatusEntries)
	}
}

// TestStatus_OtherReplica: a replica that did not make a transition sees it
// in Status within StatusMaxStale; the one that made it sees it at once.
func TestStatus_OtherReplica(t *testing.T) {
	e := newEnv(t, "EU", "US")
	ctx := t.Context()
	a, b := e.service(e.cfg, nil), e.service(e.cfg, nil)
	tn := e.mustTenant("EU", "acme", 3, 3)
	must(a.Schedule(ctx, "EU", tn, e.req("m1", "US")))(t)
	if got := must(b.Status(ctx, "EU", "acme", "m1"))(t); got.State != realmhook.MigrationScheduled {
		t.Fatalf("b: %s, want scheduled", got.State)
	}
	m := must(a.Status(ctx, "EU", "acme", "m1"))(t)
	if err := a.transition(ctx, e.stores["EU"], m, realmhook.MigrationRollingBack, "test", nil); err != nil {
		t.Fatal(err)
	}
	if got := must(a.Status(ctx, "EU", "acme", "m1"))(t); got.State != realmhook.MigrationRollingBack {
		t.Fatalf("a, which made the transition: %s, want rolling-back at once", got.State)
	}
	if got := must(b.Status(ctx, "EU", "acme", "m1"))(t); got.State != realmhook.MigrationScheduled {
		t.Fatalf("b within StatusMaxStale: %s, want the cached scheduled", got.State)
	}
	e.clock.Advance(StatusMaxStale)
	if got := must(b.Status(ctx, "EU", "acme", "m1"))(t); got.State != realmhook.MigrationRollingBack {
		t.Fatalf("b after StatusMaxStale: %s, want rolling-back", got.State)
	}
}
