package realms

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// MaxStale bounds how old a cached tenant record may be when another process
// changed it: before answering from the cache, a realm asks its database
// which records changed (one small read) if it last asked longer ago than
// this. A change this process makes is seen at once.
const MaxStale = 500 * time.Millisecond

// maxAbsent bounds the remembered "no such tenant" answers, which callers
// can create at will with made-up client keys.
const maxAbsent = 100_000

// tenantCache keeps one realm's tenant records in memory for the routed
// request path. It is correct across replicas because it never trusts an
// entry after MaxStale without reading the realm's tenant change sequence
// (store.TenantChanges), which every write of a tenant record bumps in its
// own transaction; it drops what changed, or everything when it fell behind.
type tenantCache struct {
	st  store.Store
	now func() time.Time

	mu      sync.RWMutex
	entries map[string]*realmhook.Tenant // nil: known absent
	absent  int
	gen     uint64 // bumped by every invalidation, so a read racing one is not cached

	// freshUntil is when the entries must next be checked against the
	// change sequence, in unix nanoseconds of now; 0 when they must be now.
	// Read without a lock on every request.
	freshUntil atomic.Int64
	syncMu     sync.Mutex // one change read at a time
	seq        int64      // the change sequence number the entries reflect
	synced     bool
}

func newTenantCache(st store.Store, now func() time.Time) *tenantCache {
	if now == nil {
		now = time.Now
	}
	return &tenantCache{st: st, now: now, entries: map[string]*realmhook.Tenant{}}
}

// get returns the tenant record (a copy the caller may keep), from memory
// when the cache is in step with the database, else from the database.
func (c *tenantCache) get(ctx context.Context, clientKey string) (*realmhook.Tenant, error) {
	if err := c.catchUp(ctx); err != nil {
		// Cannot tell what changed: answer from the database itself.
		return c.st.GetTenant(ctx, clientKey)
	}
	c.mu.RLock()
	t, ok := c.entries[clientKey]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		if t == nil {
			return nil, realmhook.Errorf(realmhook.ENOTFOUND, "tenant %q not found", clientKey)
		}
		cp := *t
		return &cp, nil
	}
	return c.load(ctx, clientKey, gen)
}

// refresh reads the record from the database and caches it: for a caller
// that has reason to doubt the cached one (a signature that does not verify
// with the cached secret).
func (c *tenantCache) refresh(ctx context.Context, clientKey string) (*realmhook.Tenant, error) {
	c.mu.RLock()
	gen := c.gen
	c.mu.RUnlock()
	return c.load(ctx, clientKey, gen)
}

func (c *tenantCache) load(ctx context.Context, clientKey string, gen uint64) (*realmhook.Tenant, error) {
	t, err := c.st.GetTenant(ctx, clientKey)
	if err != nil && realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
		return nil, err
	}
	c.mu.Lock()
	// An invalidation since gen was read may be of this very record, written
	// after the read above saw the old one: then don't keep what was read.
	if c.gen == gen {
		c.forget(clientKey)
		switch {
		case t != nil:
			cp := *t
			c.entries[clientKey] = &cp
		case c.absent < maxAbsent:
			c.entries[clientKey] = nil
			c.absent++
		}
	}
	c.mu.Unlock()
	return t, err
}

// invalidate forgets a record this process just wrote.
func (c *tenantCache) invalidate(clientKey string) {
	c.mu.Lock()
	c.forget(clientKey)
	c.gen++
	c.mu.Unlock()
}

func (c *tenantCache) forget(clientKey string) {
	if t, ok := c.entries[clientKey]; ok {
		if t == nil {
			c.absent--
		}
		delete(c.entries, clientKey)
	}
}

// catchUp reads the change sequence when the last read is older than
// MaxStale and forgets every record changed since.
func (c *tenantCache) catchUp(ctx context.Context) error {
	if c.now().UnixNano() < c.freshUntil.Load() {
		return nil
	}
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	now := c.now()
	if now.UnixNano() < c.freshUntil.Load() {
		return nil // another request caught up while this one waited
	}
	seq, changed, complete, err := c.st.TenantChanges(ctx, c.seq)
	if err != nil {
		c.synced = false
		return err
	}
	c.mu.Lock()
	switch {
	case !c.synced || !complete:
		// Never read, or fell behind the kept log (or the last read failed,
		// and anything may have changed since): start afresh.
		c.entries = map[string]*realmhook.Tenant{}
		c.absent = 0
	default:
		for _, key := range changed {
			c.forget(key)
		}
	}
	if !c.synced || len(changed) > 0 || !complete {
		c.gen++
	}
	c.mu.Unlock()
	// now was taken before the read, so staleness is measured from a moment
	// at or before what the read saw.
	c.seq, c.synced = seq, true
	c.freshUntil.Store(now.Add(MaxStale).UnixNano())
	return nil
}

// cachingStore is a realm's store as everything in this process uses it: it
// forgets a cached record as soon as this process writes it.
type cachingStore struct {
	store.Store
	cache *tenantCache
}

func (s *cachingStore) PutTenant(ctx context.Context, t *realmhook.Tenant, events ...realmhook.Event) error {
	err := s.Store.PutTenant(ctx, t, events...)
	if t != nil {
		s.cache.invalidate(t.ClientKey)
	}
	return err
}

func (s *cachingStore) UpdateTenant(ctx context.Context, clientKey string, change func(*realmhook.Tenant) error, events ...realmhook.Event) (*realmhook.Tenant, error) {
	t, err := s.Store.UpdateTenant(ctx, clientKey, change, events...)
	s.cache.invalidate(clientKey)
	return t, err
}

func (s *cachingStore) DeleteTenant(ctx context.Context, clientKey string) error {
	err := s.Store.DeleteTenant(ctx, clientKey)
	s.cache.invalidate(clientKey)
	return err
}
