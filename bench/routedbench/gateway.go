package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/realmhook/realmhook/connectjwt"
)

// goalGateway is the issue's: a GET through the gateway ÷ the same GET to
// the upstream directly, at least.
const goalGateway = 0.5

// gatewayPath is the app route the gateway suite reads; the bare server,
// the upstream, answers any path from memory.
const gatewayPath = "/page"

// runGateway puts realmhook (m.Small tenants in EU, the gateway on) in front
// of the bare server and measures a GET of an app route through it and to
// the bare server directly, interleaved, with the same pre-signed tokens.
func (m *Main) runGateway(ctx context.Context, dir string, keep func(*process, error) (*process, error)) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "concurrency %d, runs of at most %s or %d requests, warm-up %s, %d repetitions\n",
		m.Load.Concurrency, m.Load.Duration, m.Load.Requests, m.Load.Warmup, m.Reps)
	upstream, err := keep(startBaseline(ctx, self, "bare", 1))
	if err != nil {
		return err
	}
	upstreamURL := strings.TrimSuffix(upstream.base, euPath)
	extra := fmt.Sprintf("gateway:\n  upstream: %s\n  identitySecret: %s\n", upstreamURL, strings.Repeat("b", 32))
	fmt.Fprintf(m.Stdout, "seeding realmhook with %d tenants, its gateway to the bare server…\n", m.Small)
	rh, tenants, err := startRealmhookWith(ctx, m.Realmhook, dir, m.Small, m.LogLevel, extra)
	if _, err := keep(rh, err); err != nil {
		return err
	}
	scenarios := []*scenario{
		{Name: "upstream direct GET", Target: &target{Name: "upstream", BaseURL: upstream.base, Tenants: tenants}},
		{Name: "realmhook gateway GET", Target: &target{Name: "gateway", BaseURL: rh.base, Tenants: tenants}},
		// For context, not the goal: realmhook's own routed GET (the tenant
		// API, a property from SQLite) on the same process.
		{Name: "realmhook property GET", Method: http.MethodGet, Target: &target{Name: "realmhook", BaseURL: rh.base, Tenants: tenants}},
	}
	rnd := newRand()
	sign := func(n int) ([]request, error) {
		out := make([]request, n)
		signer := connectjwt.Signer{TTL: 30 * time.Minute}
		for i := range out {
			ten := tenants[rnd.IntN(len(tenants))]
			tok, err := signer.HS256(ten.Secret, ten.ClientKey, http.MethodGet, signBase+gatewayPath, signBase)
			if err != nil {
				return nil, err
			}
			out[i] = request{method: http.MethodGet, path: gatewayPath, auth: "JWT " + tok}
		}
		return out, nil
	}
	for rep := 1; rep <= m.Reps; rep++ {
		warm, err := sign(max(m.Load.Concurrency*4, m.Load.Requests/10))
		if err != nil {
			return err
		}
		reqs, err := sign(m.Load.Requests)
		if err != nil {
			return err
		}
		for _, sc := range scenarios {
			var res runResult
			var err error
			if sc.Method != "" {
				res, err = measure(ctx, *sc.Target, sc.Method, m.Load, rnd)
			} else {
				res, err = measureWith(ctx, *sc.Target, m.Load, warm, reqs)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", sc.Name, err)
			}
			sc.Runs = append(sc.Runs, res)
			fmt.Fprintf(m.Stderr, "rep %d %-24s %8.0f req/s  p50 %-9s p99 %s\n", rep, sc.Name, res.perSec(), round(res.P50), round(res.P99))
		}
	}
	direct, gw, own := summarise(scenarios[0].Runs), summarise(scenarios[1].Runs), summarise(scenarios[2].Runs)
	tw := tabwriter.NewWriter(m.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\trequests/s\tp50\tp99\t")
	for i, s := range []summary{direct, gw, own} {
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t\n", scenarios[i].Name, s.PerSec, round(s.P50), round(s.P99))
	}
	tw.Flush()
	ratio := gw.PerSec / direct.PerSec
	mark := "met   "
	if ratio < goalGateway {
		mark = "MISSED"
	}
	fmt.Fprintf(m.Stdout, "\ngoals:\n  %s realmhook gateway GET ÷ upstream direct GET = %.2f (goal ≥ %.1f) at concurrency %d; gateway p99 %s\n",
		mark, ratio, goalGateway, m.Load.Concurrency, round(gw.P99))
	fmt.Fprintf(m.Stdout, "  (context) realmhook property GET ÷ upstream direct GET = %.2f; gateway GET ÷ property GET = %.2f\n",
		own.PerSec/direct.PerSec, gw.PerSec/own.PerSec)
	return nil
}
