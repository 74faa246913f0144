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

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestStatusCache(t *testing.T) {
	ctx := context.Background()
	rec := func(state realmhook.MigrationState) *realmhook.Migration {
		return &realmhook.Migration{ClientKey: "ck", ID: "m1", State: state}
	}
	t.Run("ReadOncePerMaxStale", func(t *testing.T) {
		clock := &fakeClock{t: time.Unix(1700000000, 0)}
		c := newStatusCache(clock.now)
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
		clock.add(StatusMaxStale)
		if _, err := c.get(ctx, "ck", "m1", load); err != nil {
			t.Fatal(err)
		}
		if n := loads.Load(); n != 2 {
			t.Fatalf("%d loads after StatusMaxStale, want 2", n)
		}
	})
	t.Run("PublishSeenAtOnce", func(t *testing.T) {
		clock := &fakeClock{t: time.Unix(1700000000, 0)}
		c := newStatusCache(clock.now)
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
		clock := &fakeClock{t: time.Unix(1700000000, 0)}
		c := newStatusCache(clock.now)
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
		clock := &fakeClock{t: time.Unix(1700000000, 0)}
		c := newStatusCache(clock.now)
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
		clock := &fakeClock{t: time.Unix(1700000000, 0)}
		c := newStatusCache(clock.now)
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
		clock := &fakeClock{t: time.Unix(1700000000, 0)}
		c := newStatusCache(clock.now)
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
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	c := newStatusCache(clock.now)
	for i := range maxStatusEntries + 10 {
		c.publish(&realmhook.Migration{ClientKey: "ck", ID: string(rune('a'+i%26)) + time.Duration(i).String(), State: realmhook.MigrationCopying})
	}
	if n := len(c.entries); n > maxStatusEntries {
		t.Fatalf("%d entries, want at most %d", n, maxStatusEntries)
	}
}
