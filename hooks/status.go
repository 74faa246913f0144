package hooks

import (
	"sync"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/realms"
)

// maxRemembered bounds each of lastSeen's maps: beyond it, an arbitrary
// entry makes room. Tenants in the middle of a migration are few.
const maxRemembered = 10000

// lastSeen is what this process last verified and answered on the migration
// hooks: the tenant record (with the secret its tokens are checked with) and
// each migration's last status. The host rolls a migration back on any
// non-2xx from /status, so while the databases do not answer, /status is
// answered from here, marked stale, instead of with a 5xx.
type lastSeen struct {
	mu       sync.Mutex
	tenants  map[string]seenTenant
	statuses map[[2]string]*realmhook.Migration
}

type seenTenant struct {
	home   *realms.Realm
	tenant *realmhook.Tenant
}

func newLastSeen() *lastSeen {
	return &lastSeen{tenants: map[string]seenTenant{}, statuses: map[[2]string]*realmhook.Migration{}}
}

func (l *lastSeen) rememberTenant(home *realms.Realm, t *realmhook.Tenant) {
	c := *t
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.tenants[t.ClientKey]; !ok && len(l.tenants) >= maxRemembered {
		for k := range l.tenants {
			delete(l.tenants, k)
			break
		}
	}
	l.tenants[t.ClientKey] = seenTenant{home: home, tenant: &c}
}

// tenant is identity.Options.LastSeen.
func (l *lastSeen) tenant(clientKey string) (*realms.Realm, *realmhook.Tenant, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.tenants[clientKey]
	if !ok {
		return nil, nil, false
	}
	c := *st.tenant
	return st.home, &c, true
}

func (l *lastSeen) rememberStatus(m *realmhook.Migration) {
	c := *m
	k := [2]string{m.ClientKey, m.ID}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.statuses[k]; !ok && len(l.statuses) >= maxRemembered {
		for k := range l.statuses {
			delete(l.statuses, k)
			break
		}
	}
	l.statuses[k] = &c
}

func (l *lastSeen) status(clientKey, id string) (*realmhook.Migration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, ok := l.statuses[[2]string{clientKey, id}]
	return m, ok
}

// statusInProgress is the status /status answers, stale, when the databases
// do not answer and this process has seen nothing of the migration: any
// status but ready-to-commit and failed tells the host to keep polling.
const statusInProgress = "in-progress"

// staleView is a migration's last seen status (or, with m nil, an
// in-progress one) marked stale.
func staleView(m *realmhook.Migration, id string) map[string]any {
	if m == nil {
		m = &realmhook.Migration{ID: id, State: statusInProgress}
	}
	v := migrationView(m)
	v["stale"] = true
	v["staleReason"] = "the database did not answer; this is the last status this process saw"
	return v
}
