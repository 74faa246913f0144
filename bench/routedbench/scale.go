package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/hostsim"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/sqlite"
)

// Goals of the scale suite: flat from the smallest to the largest count.
const goalScaleFlat = 1.2

// installConcurrency is how many installs the bench's host sends at once.
const installConcurrency = 16

// runScale installs each count of tenants into a fresh realmhook (embedded,
// SQLite) with signed (RS256) installs, then measures the routed GET over
// random tenants and the memory per tenant.
func (m *Main) runScale(ctx context.Context, dir string, keep func(*process, error) (*process, error)) error {
	kp, err := hostsim.GenerateKeyPair()
	if err != nil {
		return err
	}
	ks, err := hostsim.NewKeyServer(kp)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	keySrv := &http.Server{Handler: ks, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = keySrv.Serve(ln) }()
	defer keySrv.Close()
	keysURL := "http://" + ln.Addr().String()

	type row struct {
		n                 int
		install           runResult
		get               runResult
		rssIdle, rssAfter int64
		perTenant         float64
	}
	var rows []row
	for _, n := range m.Migr.ScaleTenants {
		tenants := benchTenants(n)
		sub := filepath.Join(dir, strconv.Itoa(n))
		p, err := keep(runRealmhook(ctx, m.Realmhook, sub, rhConfig{LogLevel: m.LogLevel, Databases: map[string]string{
			"global": "sqlite:" + filepath.Join(sub, "global.db"),
			"US":     "sqlite:" + filepath.Join(sub, "us.db"),
			"EU":     "sqlite:" + filepath.Join(sub, "eu.db"),
		}, Extra: "installKeys:\n  url: " + keysURL + "\n"}))
		if err != nil {
			return err
		}
		r := row{n: n, rssIdle: p.rssBytes()}
		fmt.Fprintf(m.Stderr, "scale %d: signing %d installs…\n", n, n)
		installs, err := signInstalls(kp, p.base, tenants)
		if err != nil {
			return err
		}
		l := load{Concurrency: installConcurrency, Duration: time.Hour, Requests: n}
		client := newClient(installConcurrency)
		r.install, err = drive(ctx, client, p.base, l, installs, l.Duration, true)
		client.CloseIdleConnections()
		if err != nil {
			return fmt.Errorf("%d installs: %w", n, err)
		}
		fmt.Fprintf(m.Stderr, "scale %d: %.0f installs/s, p99 %s\n", n, r.install.perSec(), round(r.install.P99))
		// The property the GET reads, written beside the running process.
		if err := seedProperty(ctx, filepath.Join(sub, "eu.db"), tenants); err != nil {
			return err
		}
		if r.get, err = measure(ctx, target{Name: "realmhook", BaseURL: p.base, Tenants: tenants}, http.MethodGet, m.Load, newRand()); err != nil {
			return err
		}
		r.rssAfter = p.rssBytes()
		// The marginal cost of a tenant: the growth since the previous count
		// (since the empty process for the first), so the fixed cost of the
		// load (connections, buffers) is not spread over the tenants.
		prevN, prevRSS := 0, r.rssIdle
		if len(rows) > 0 {
			prevN, prevRSS = rows[len(rows)-1].n, rows[len(rows)-1].rssAfter
		}
		r.perTenant = float64(r.rssAfter-prevRSS) / float64(n-prevN)
		fmt.Fprintf(m.Stderr, "scale %d: GET %.0f req/s, p99 %s, RSS %.1f MiB\n", n, r.get.perSec(), round(r.get.P99), mib(r.rssAfter))
		p.stop()
		rows = append(rows, r)
	}
	fmt.Fprintf(m.Stdout, "scale: signed (RS256) installs into EU, %d at a time; then the routed GET over random tenants at concurrency %d\n", installConcurrency, m.Load.Concurrency)
	fmt.Fprintf(m.Stdout, "%10s %12s %12s %12s %12s %12s %12s %14s\n", "tenants", "installs/s", "install p50", "install p99", "GET req/s", "GET p99", "RSS MiB", "bytes/added")
	for _, r := range rows {
		fmt.Fprintf(m.Stdout, "%10d %12.0f %12s %12s %12.0f %12s %12.1f %14.0f\n", r.n, r.install.perSec(), round(r.install.P50), round(r.install.P99),
			r.get.perSec(), round(r.get.P99), mib(r.rssAfter), r.perTenant)
	}
	if len(rows) < 2 {
		return nil
	}
	a, b := rows[0], rows[len(rows)-1]
	fmt.Fprintln(m.Stdout, "\ngoals (smallest ÷ largest count; memory largest ÷ smallest):")
	check(m.Stdout, a.install.perSec()/b.install.perSec() <= goalScaleFlat, "installs/s at %d ÷ at %d = %.2f (goal ≤ %.1f); p99 %s vs %s",
		a.n, b.n, a.install.perSec()/b.install.perSec(), goalScaleFlat, round(a.install.P99), round(b.install.P99))
	check(m.Stdout, a.get.perSec()/b.get.perSec() <= goalScaleFlat, "GET req/s at %d ÷ at %d = %.2f (goal ≤ %.1f); p99 %s vs %s",
		a.n, b.n, a.get.perSec()/b.get.perSec(), goalScaleFlat, round(a.get.P99), round(b.get.P99))
	if len(rows) >= 3 {
		// The first step's growth includes the load's own fixed cost.
		a2 := rows[1]
		check(m.Stdout, b.perTenant/a2.perTenant <= goalScaleFlat, "memory per added tenant, %d→%d ÷ %d→%d = %.2f (%.0f ÷ %.0f bytes; goal ≤ %.1f)",
			rows[len(rows)-2].n, b.n, a.n, a2.n, b.perTenant/a2.perTenant, b.perTenant, a2.perTenant, goalScaleFlat)
	}
	return nil
}

// signInstalls signs one installed call per tenant, as the host does (RS256,
// kid in the header, aud the realm's base URL), before the clock starts: the
// host's signing is not the app's cost.
func signInstalls(kp hostsim.KeyPair, base string, tenants []benchTenant) ([]request, error) {
	out := make([]request, len(tenants))
	errs := make([]error, runtime.NumCPU())
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			signer := connectjwt.Signer{TTL: 2 * time.Hour}
			for i := w; i < len(tenants); i += len(errs) {
				t := tenants[i]
				body, err := json.Marshal(map[string]string{
					"key": appKey, "clientKey": t.ClientKey, "sharedSecret": string(t.Secret),
					"baseUrl": tenantBaseURL(t.ClientKey), "displayUrl": tenantBaseURL(t.ClientKey),
					"productType": "jira", "description": "routedbench", "eventType": "installed",
				})
				if err != nil {
					errs[w] = err
					return
				}
				tok, err := signer.RS256(kp.Private, kp.ID, t.ClientKey, base, http.MethodPost, base+"/installed", base)
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = request{method: http.MethodPost, path: "/installed", auth: "JWT " + tok, body: body}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// seedProperty sets readKey for every tenant in the realm database at path.
func seedProperty(ctx context.Context, path string, tenants []benchTenant) error {
	st, err := sqlite.Open(ctx, path, sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer st.Close()
	i := 0
	_, err = st.CopyRows(ctx, store.PropertiesTable, []string{"client_key", "key", "value"}, func() ([]store.Row, error) {
		var batch []store.Row
		for ; i < len(tenants) && len(batch) < 5000; i++ {
			batch = append(batch, store.Row{tenants[i].ClientKey, readKey, string(readValue)})
		}
		return batch, nil
	})
	return err
}
