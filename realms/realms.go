// Package realms knows which realms exist, which of them this process serves,
// at which base URL each is reached, and which realm holds a tenant.
package realms

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// Realm is one realm as this process sees it.
type Realm struct {
	Key string
	// BaseURL is the realm's base URL without a trailing slash.
	BaseURL string
	// Store is the realm's database; nil when this process does not serve it.
	// Writes of tenant records through it are seen by Tenant at once.
	Store   store.Store
	tenants *tenantCache

	host     string
	basePath string
}

// NewRealm returns a realm reached at baseURL, served from s (nil: not served).
func NewRealm(key, baseURL string, s store.Store) (*Realm, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, realmhook.Errorf(realmhook.EINVALID, "realms.%s.baseUrl: %q is not an absolute http(s) URL", key, baseURL)
	}
	r := &Realm{
		Key:      key,
		BaseURL:  strings.TrimSuffix(baseURL, "/"),
		host:     strings.ToLower(u.Host),
		basePath: strings.TrimSuffix(u.EscapedPath(), "/"),
	}
	if s != nil {
		r.tenants = newTenantCache(s, nil)
		r.Store = &cachingStore{Store: s, cache: r.tenants}
	}
	return r, nil
}

// Tenant returns the tenant record for the routed request path: from memory
// when nothing changed it (MaxStale bounds how late a change made by another
// process is seen), otherwise from the database. Decisions that change state
// read Store.GetTenant, or better, act inside the store's own transaction.
func (r *Realm) Tenant(ctx context.Context, clientKey string) (*realmhook.Tenant, error) {
	if r.tenants == nil {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "realm %s is not served here", r.Key)
	}
	return r.tenants.get(ctx, clientKey)
}

// SQLDB is the realm's database for the app's own tables (SQLite, or
// PostgreSQL through pgx's database/sql driver), shared by every caller.
func (r *Realm) SQLDB() (*sql.DB, error) {
	if r.tenants == nil {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "realm %s is not served here", r.Key)
	}
	// Wrappers (secrets.Store seals secrets) expose the store they wrap.
	for st := r.tenants.st; st != nil; {
		if d, ok := st.(interface{ SQLDB() (*sql.DB, error) }); ok {
			return d.SQLDB()
		}
		u, ok := st.(interface{ Unwrap() store.Store })
		if !ok {
			break
		}
		st = u.Unwrap()
	}
	return nil, fmt.Errorf("realm %s: its %s store offers no database/sql handle", r.Key, r.tenants.st.Backend())
}

// RefreshTenant reads the tenant record from the database and caches it,
// for a caller that doubts the cached one: a token that does not verify with
// the cached secret may be signed with the secret of a re-install another
// replica just stored.
func (r *Realm) RefreshTenant(ctx context.Context, clientKey string) (*realmhook.Tenant, error) {
	if r.tenants == nil {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "realm %s is not served here", r.Key)
	}
	return r.tenants.refresh(ctx, clientKey)
}

// Served reports whether this process holds the realm's database.
func (r *Realm) Served() bool { return r.Store != nil }

// BasePath is the path of the base URL ("" for a base URL at the root). Routes
// of the realm hang below it, and a Connect qsh is computed relative to it.
func (r *Realm) BasePath() string { return r.basePath }

// Registry is every configured realm.
type Registry struct {
	byKey  map[string]*Realm
	all    []*Realm
	served []*Realm // computed once: every request asks
}

// NewRegistry builds a registry; keys must be unique.
func NewRegistry(list ...*Realm) (*Registry, error) {
	g := &Registry{byKey: make(map[string]*Realm, len(list))}
	for _, r := range list {
		if _, dup := g.byKey[r.Key]; dup {
			return nil, realmhook.Errorf(realmhook.EINVALID, "realms.%s: configured twice", r.Key)
		}
		g.byKey[r.Key] = r
		g.all = append(g.all, r)
	}
	sort.Slice(g.all, func(i, j int) bool {
		// global first, then by key, so listings read the same every time.
		if (g.all[i].Key == realmhook.GlobalRealm) != (g.all[j].Key == realmhook.GlobalRealm) {
			return g.all[i].Key == realmhook.GlobalRealm
		}
		return g.all[i].Key < g.all[j].Key
	})
	for _, r := range g.all {
		if r.Served() {
			g.served = append(g.served, r)
		}
	}
	return g, nil
}

// Get returns the realm with the given key.
func (g *Registry) Get(key string) (*Realm, bool) {
	r, ok := g.byKey[key]
	return r, ok
}

// All returns every configured realm, global first.
func (g *Registry) All() []*Realm { return g.all }

// Served returns the realms this process serves, global first.
func (g *Registry) Served() []*Realm { return g.served }

// BaseURLs returns every published base URL (the audiences a signed install
// may name).
func (g *Registry) BaseURLs() []string {
	out := make([]string, 0, len(g.all))
	for _, r := range g.all {
		out = append(out, r.BaseURL)
	}
	return out
}

// BasePaths returns the distinct base paths of the served realms: the route
// prefixes the HTTP layer registers.
func (g *Registry) BasePaths() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range g.Served() {
		if !seen[r.basePath] {
			seen[r.basePath] = true
			out = append(out, r.basePath)
		}
	}
	sort.Strings(out)
	return out
}

// Match returns the served realm a request to host was addressed to: the
// longest base path that prefixes the request path on a segment boundary, and
// among realms sharing that path (regional hosts), the one whose host matches.
//
// rawPath is the path as received (percent-encoding as sent) and path the
// decoded one that routes are matched on. Both must name the same realm: a
// path such as /realms/%65u/… lies under the global base URL as sent and
// under the EU one once decoded, so its realm is ambiguous and it is refused
// (EINVALID) rather than routed by one form and authorised by the other. No
// realm at all is ENOTFOUND.
func (g *Registry) Match(host, rawPath, path string) (*Realm, error) {
	realm, ok := g.matchPath(host, path)
	if raw, rawOK := g.matchPath(host, rawPath); raw != realm || rawOK != ok {
		return nil, realmhook.Errorf(realmhook.EINVALID,
			"the path's realm is ambiguous: %s as sent, %s once decoded; send the realm's base path without percent-encoding",
			keyOrNone(raw), keyOrNone(realm))
	}
	if !ok {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "no realm served at %s%s", host, path)
	}
	return realm, nil
}

func keyOrNone(r *Realm) string {
	if r == nil {
		return "no realm"
	}
	return "realm " + r.Key
}

func (g *Registry) matchPath(host, path string) (*Realm, bool) {
	host = strings.ToLower(host)
	var best []*Realm
	bestLen := -1
	for _, realm := range g.Served() {
		if !underPath(path, realm.basePath) {
			continue
		}
		switch n := len(realm.basePath); {
		case n > bestLen:
			best, bestLen = []*Realm{realm}, n
		case n == bestLen:
			best = append(best, realm)
		}
	}
	if len(best) == 0 {
		return nil, false
	}
	if len(best) == 1 {
		return best[0], true
	}
	for _, realm := range best {
		if realm.host == host {
			return realm, true
		}
	}
	return nil, false
}

func underPath(path, base string) bool {
	if base == "" {
		return true
	}
	return path == base || strings.HasPrefix(path, base+"/")
}

// Locate finds the served realm whose record of the tenant serves it: the
// record of the highest locateRank. A tenant lives in one realm, but while a
// commit is applied its target is active before its source is marked moved,
// and a rollback of that commit unfreezes the source only after the target's
// copy is gone; the ranks pick the right record in every such moment, in
// whatever order the realms are asked.
func (g *Registry) Locate(ctx context.Context, clientKey string) (*Realm, *realmhook.Tenant, error) {
	return g.locate(ctx, clientKey, func(r *Realm) (*realmhook.Tenant, error) { return r.Store.GetTenant(ctx, clientKey) })
}

// LocateCached is Locate from each realm's Tenant: what a routed request
// (a tenant call, a /status poll) asks, at the cost of a map lookup per realm.
func (g *Registry) LocateCached(ctx context.Context, clientKey string) (*Realm, *realmhook.Tenant, error) {
	return g.locate(ctx, clientKey, func(r *Realm) (*realmhook.Tenant, error) { return r.Tenant(ctx, clientKey) })
}

func (g *Registry) locate(ctx context.Context, clientKey string, get func(*Realm) (*realmhook.Tenant, error)) (*Realm, *realmhook.Tenant, error) {
	var found *Realm
	var tenant *realmhook.Tenant
	for _, realm := range g.Served() {
		t, err := get(realm)
		if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, nil, fmt.Errorf("locate tenant in realm %s: %w", realm.Key, err)
		}
		if locateRank(t) == 0 {
			continue
		}
		if found == nil || locateRank(t) > locateRank(tenant) ||
			(locateRank(t) == locateRank(tenant) && realm.Key < found.Key) {
			found, tenant = realm, t
		}
	}
	if found == nil {
		return nil, nil, realmhook.Errorf(realmhook.ENOTFOUND, "no active tenant %q in the realms this process serves", clientKey)
	}
	return found, tenant, nil
}

// locateRank is how strongly a record claims to serve its tenant, 0 for not
// at all. An active record that no migration holds outranks one a migration
// froze: the frozen one is the source of that migration, and an unfrozen one
// elsewhere can only be its target, activated by its commit. Records in the
// other states never serve (incoming: not yet; moved or purging: no longer;
// uninstalled: until a re-install). Two records of one rank should not exist;
// should they, the lower realm key wins, so every replica answers alike.
func locateRank(t *realmhook.Tenant) int {
	switch {
	case t.State != realmhook.TenantActive:
		return 0
	case t.Frozen():
		return 1
	}
	return 2
}
