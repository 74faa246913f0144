package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/realmhook/realmhook/realms"
)

// Probed checks, by name.
const (
	checkDatabase    = "database"
	checkInternalAPI = "internal_api"
)

// check is one probed dependency of a realm.
type check struct {
	Name    string
	OK      bool
	Detail  string
	Latency time.Duration
}

// health is what one probe of a realm found.
type health struct {
	Checks   []check
	ProbedAt time.Time
}

// Healthy: every check passed (and there was at least one).
func (h health) Healthy() bool {
	if len(h.Checks) == 0 {
		return false
	}
	for _, c := range h.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// prober probes every realm's health in the background and keeps the last
// result of each: a served realm's database must answer a ping, and a realm
// with an internalUrl must answer HTTP there (any answer below 500 to GET
// /healthz: the process is up and its listener serves). What peers say of
// themselves is not taken on trust.
type prober struct {
	realms   *realms.Registry
	internal map[string]string
	every    time.Duration
	client   *http.Client
	now      func() time.Time

	mu   sync.Mutex
	last map[string]health
}

func newProber(reg *realms.Registry, internal map[string]string, every time.Duration, client *http.Client, now func() time.Time) *prober {
	if client == nil {
		client = &http.Client{}
	}
	return &prober{realms: reg, internal: internal, every: every, client: client, now: now, last: map[string]health{}}
}

func (p *prober) run(ctx context.Context) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		p.probeAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// get returns realm's last probe, probing it now if it never was.
func (p *prober) get(ctx context.Context, realm string) health {
	p.mu.Lock()
	h, ok := p.last[realm]
	p.mu.Unlock()
	if ok {
		return h
	}
	if r, found := p.realms.Get(realm); found {
		return p.probe(ctx, r)
	}
	return health{}
}

func (p *prober) probeAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range p.realms.All() {
		wg.Go(func() { p.probe(ctx, r) })
	}
	wg.Wait()
}

// probe checks one realm, each check bounded by the probe interval (at
// most 5 s) so that a hung database cannot stall the next round.
func (p *prober) probe(ctx context.Context, r *realms.Realm) health {
	timeout := min(p.every, 5*time.Second)
	h := health{ProbedAt: p.now().UTC()}
	if r.Served() {
		h.Checks = append(h.Checks, p.timed(ctx, checkDatabase, timeout, r.Store.Ping))
	}
	if u := p.internal[r.Key]; u != "" {
		h.Checks = append(h.Checks, p.timed(ctx, checkInternalAPI, timeout, func(ctx context.Context) error {
			return p.askInternal(ctx, u)
		}))
	}
	if ctx.Err() != nil {
		return h
	}
	p.mu.Lock()
	p.last[r.Key] = h
	p.mu.Unlock()
	return h
}

func (p *prober) timed(ctx context.Context, name string, timeout time.Duration, fn func(context.Context) error) check {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	c := check{Name: name, OK: err == nil, Latency: time.Since(start)}
	if err != nil {
		c.Detail = err.Error()
	}
	return c
}

func (p *prober) askInternal(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("internal API: %w", err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("internal API: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("internal API answered %s", resp.Status)
	}
	return nil
}
