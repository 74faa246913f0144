package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/internal/pgcluster"
)

// Goals of the status-under-load suite.
const (
	goalStatusP99      = 5 * time.Millisecond
	goalStatusSlowdown = 0.10 // the copy with pollers ÷ without, minus 1, at most
)

// runStatus copies a tenant to another realm, alone and with Pollers clients
// polling /status every PollEvery, interleaved, on each backend, and prints
// /status's p50/p99 and the copy's time with and without the pollers.
func (m *Main) runStatus(ctx context.Context, dir string, keep func(*process, error) (*process, error)) error {
	f := m.Migr
	fmt.Fprintf(m.Stdout, "status: a %d-row tenant US → EU (a tenth properties, the rest an app table), alone and with %d pollers of /status every %s; %d interleaved pair(s)\n",
		f.StatusRows, f.Pollers, f.PollEvery, f.StatusReps)
	var pg *pgcluster.Cluster
	if slices.Contains(f.StatusBackends, "postgres") {
		var err error
		if pg, err = startPostgres(ctx); err != nil {
			return err
		}
		defer func() { _ = pg.Stop() }()
	}
	type outcome struct {
		backend          string
		alone, polled    []time.Duration
		rhCPU, benchCPU  [2][]time.Duration // [0] alone, [1] with pollers
		p50, p99         time.Duration
		polls, pollFails int
	}
	var outs []outcome
	for _, backend := range f.StatusBackends {
		fmt.Fprintf(m.Stderr, "status %s: generating %d rows…\n", backend, f.StatusRows)
		env, err := m.prepareMigration(ctx, backend, filepath.Join(dir, backend), pg, f.StatusRows, keep)
		if err != nil {
			return fmt.Errorf("%s: %w", backend, err)
		}
		o := outcome{backend: backend}
		var lat []time.Duration
		for rep := 0; rep < f.StatusReps; rep++ {
			// ABBA: neither condition always goes first.
			order := []bool{false, true}
			if rep%2 == 1 {
				order = []bool{true, false}
			}
			for _, withPollers := range order {
				var p *pollers
				var during func(context.Context, string) func()
				if withPollers {
					during = func(ctx context.Context, id string) func() {
						p = startPollers(ctx, env, id, f.Pollers, f.PollEvery)
						return p.stop
					}
				}
				rh0, self0 := env.proc.cpuTime(), selfCPU()
				t, id, err := env.migrate(ctx, f.MigrateTimeout, during)
				if err != nil {
					return fmt.Errorf("%s: %w", backend, err)
				}
				k := 0
				if withPollers {
					k = 1
				}
				o.rhCPU[k] = append(o.rhCPU[k], env.proc.cpuTime()-rh0)
				o.benchCPU[k] = append(o.benchCPU[k], selfCPU()-self0)
				if withPollers {
					o.polled = append(o.polled, t.Wall)
					lat = append(lat, p.latencies...)
					o.polls += len(p.latencies)
					o.pollFails += p.failures
				} else {
					o.alone = append(o.alone, t.Wall)
				}
				fmt.Fprintf(m.Stderr, "status %s: copy+verify %s (copy %s, verify %s), pollers %v\n", backend, t.Wall.Round(time.Millisecond),
					t.Copy.Round(time.Millisecond), t.Verify.Round(time.Millisecond), withPollers)
				if err := env.rollback(ctx, id, f.MigrateTimeout); err != nil {
					return fmt.Errorf("%s: %w", backend, err)
				}
			}
		}
		slices.Sort(lat)
		if len(lat) > 0 {
			o.p50, o.p99 = lat[len(lat)*50/100], lat[len(lat)*99/100]
		}
		outs = append(outs, o)
		env.proc.stop()
	}
	fmt.Fprintf(m.Stdout, "%-9s %14s %14s %9s %10s %10s %10s %8s\n", "backend", "copy alone", "with pollers", "slowdown", "polls", "status p50", "status p99", "failed")
	for _, o := range outs {
		a, p := median(o.alone), median(o.polled)
		fmt.Fprintf(m.Stdout, "%-9s %14s %14s %8.1f%% %10d %10s %10s %8d\n", o.backend, a.Round(time.Millisecond), p.Round(time.Millisecond),
			100*(p.Seconds()/a.Seconds()-1), o.polls, round(o.p50), round(o.p99), o.pollFails)
	}
	fmt.Fprintln(m.Stdout, "\nCPU seconds used during the copy (2 cores shared by realmhook, PostgreSQL and this load generator):")
	for _, o := range outs {
		fmt.Fprintf(m.Stdout, "  %-9s realmhook %.1f alone, %.1f with pollers; load generator %.1f alone, %.1f with pollers\n", o.backend,
			median(o.rhCPU[0]).Seconds(), median(o.rhCPU[1]).Seconds(), median(o.benchCPU[0]).Seconds(), median(o.benchCPU[1]).Seconds())
	}
	fmt.Fprintln(m.Stdout, "\ngoals:")
	for _, o := range outs {
		a, p := median(o.alone), median(o.polled)
		slow := p.Seconds()/a.Seconds() - 1
		check(m.Stdout, o.p99 < goalStatusP99 && o.pollFails == 0, "%s: /status p99 = %s under %d pollers (goal < %s), %d failed", o.backend, round(o.p99), f.Pollers, goalStatusP99, o.pollFails)
		check(m.Stdout, slow < goalStatusSlowdown, "%s: copy with pollers ÷ alone = %.2f (%s ÷ %s; goal < %.2f)", o.backend, 1+slow,
			p.Round(time.Millisecond), a.Round(time.Millisecond), 1+goalStatusSlowdown)
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// pollers are n clients each asking /status every interval, as many hosts'
// admins' pages would, each on its own kept-alive connection.
type pollers struct {
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	mu        sync.Mutex
	latencies []time.Duration
	failures  int
}

func startPollers(ctx context.Context, env *migEnv, id string, n int, every time.Duration) *pollers {
	ctx, cancel := context.WithCancel(ctx)
	p := &pollers{cancel: cancel}
	u := env.hookURL("status", id)
	tok, err := connectjwt.Signer{TTL: time.Hour}.HS256(env.tenant.Secret, env.tenant.ClientKey, http.MethodGet, u, env.proc.root+migFromPath)
	if err != nil {
		panic(err) // the secret is the bench's own and never empty
	}
	client := newClient(n)
	for i := 0; i < n; i++ {
		p.wg.Go(func() {
			var lat []time.Duration
			fails := 0
			// Spread the first polls over one interval.
			next := time.Now().Add(every * time.Duration(i) / time.Duration(n))
			for {
				select {
				case <-ctx.Done():
					p.mu.Lock()
					p.latencies = append(p.latencies, lat...)
					p.failures += fails
					p.mu.Unlock()
					return
				case <-time.After(time.Until(next)):
				}
				next = next.Add(every)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
				req.Header.Set("Authorization", "JWT "+tok)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						fails++
					}
					continue
				}
				_, _ = drain(resp)
				if resp.StatusCode != http.StatusOK {
					fails++
					continue
				}
				lat = append(lat, time.Since(t0))
				if now := time.Now(); next.Before(now) {
					next = now // a late answer: the next poll goes at once, not in a burst
				}
			}
		})
	}
	return p
}

func (p *pollers) stop() {
	p.cancel()
	p.wg.Wait()
}
