package migration

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/realmhook/realmhook"
)

// StatusMaxStale bounds how old a Status answer may be: a migration's record
// is read from its database at most once per StatusMaxStale per process,
// however many pollers ask. The host polls /status (every admin page that
// shows the migration does too), and those reads competed with the copy for
// the source's connections: 500 pollers every 100 ms slowed a 100k-row SQLite
// copy six-fold. A transition this process makes is seen at once (it updates
// the cache as it writes the record); another replica's within StatusMaxStale,
// the same bound the tenant cache keeps (realms.MaxStale).
const StatusMaxStale = 500 * time.Millisecond

// maxStatusEntries bounds the cache; migrations being polled at once are few.
const maxStatusEntries = 10000

// statusCache holds each polled migration's last known record.
type statusCache struct {
	now    func() time.Time
	flight singleflight.Group

	mu      sync.Mutex
	entries map[statusKey]*statusEntry
}

type statusKey struct{ clientKey, id string }

type statusEntry struct {
	m          *realmhook.Migration
	freshUntil time.Time
	// gen counts publishes, so a read that started before one cannot
	// replace the newer record with the older one it read.
	gen uint64
}

func newStatusCache(now func() time.Time) *statusCache {
	return &statusCache{now: now, entries: map[statusKey]*statusEntry{}}
}

// get returns the migration's record: the cached one while fresh, else the
// one load reads (one load at a time per migration, shared by every caller
// waiting for it). Errors are not cached.
func (c *statusCache) get(ctx context.Context, clientKey, id string, load func(context.Context) (*realmhook.Migration, error)) (*realmhook.Migration, error) {
	k := statusKey{clientKey, id}
	c.mu.Lock()
	if e := c.entries[k]; e != nil && e.m != nil && c.now().Before(e.freshUntil) {
		m := *e.m
		c.mu.Unlock()
		return &m, nil
	}
	c.mu.Unlock()
	// The shared read must not end with the first caller's request: the
	// others waiting on it would get its cancellation instead of a status.
	ch := c.flight.DoChan(clientKey+"\x00"+id, func() (any, error) {
		// A caller that missed the cache just before another's shared read
		// stored its result starts a read of its own: it finds that result.
		c.mu.Lock()
		e := c.entry(k)
		if e.m != nil && c.now().Before(e.freshUntil) {
			m := *e.m
			c.mu.Unlock()
			return &m, nil
		}
		gen := e.gen
		c.mu.Unlock()
		readAt := c.now()
		m, err := load(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if e := c.entry(k); e.gen == gen {
			e.m, e.freshUntil = m, readAt.Add(StatusMaxStale)
		}
		c.mu.Unlock()
		return m, nil
	})
	select {
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		m := *r.Val.(*realmhook.Migration)
		return &m, nil
	}
}

// publish records m as the migration's current record: this process has
// just written it.
func (c *statusCache) publish(m *realmhook.Migration) {
	cp := *m
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entry(statusKey{m.ClientKey, m.ID})
	e.m, e.freshUntil = &cp, c.now().Add(StatusMaxStale)
	e.gen++
}

// entry returns k's entry, making room when the cache is full; c.mu is held.
func (c *statusCache) entry(k statusKey) *statusEntry {
	if e := c.entries[k]; e != nil {
		return e
	}
	if len(c.entries) >= maxStatusEntries {
		now := c.now()
		for ek, e := range c.entries {
			if !now.Before(e.freshUntil) {
				delete(c.entries, ek)
			}
		}
		for ek := range c.entries {
			if len(c.entries) < maxStatusEntries {
				break
			}
			delete(c.entries, ek)
		}
	}
	e := &statusEntry{}
	c.entries[k] = e
	return e
}
