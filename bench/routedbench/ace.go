package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/realmhook/realmhook/internal/pgcluster"
	"github.com/realmhook/realmhook/store/postgres"
)

// Goals of the comparison with atlassian-connect-express.
const (
	goalVsACE        = 15.0 // realmhook GET ÷ ACE's single process, at least
	goalVsACECluster = 8.0  // realmhook GET ÷ ACE's cluster of one worker per core, at least
)

// startPostgres starts a throwaway cluster with production's durability
// (fsync and synchronous_commit on) and creates the databases named.
func startPostgres(ctx context.Context, dbs ...string) (*pgcluster.Cluster, error) {
	c, err := pgcluster.Start(ctx, pgcluster.Options{Durable: true, Settings: []string{"max_connections=200"}})
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	for _, db := range dbs {
		if err := pgExec(ctx, c.SocketURL("postgres"), "CREATE DATABASE "+db); err != nil {
			_ = c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// pgExec runs statements one by one on a fresh connection to url.
func pgExec(ctx context.Context, url string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%.60s: %w", s, err)
		}
	}
	return nil
}

// seedPostgresRealm writes the tenants into a realm database on PostgreSQL,
// as seedRealm does on SQLite.
func seedPostgresRealm(ctx context.Context, url string, tenants []benchTenant) error {
	st, err := postgres.Open(ctx, url, postgres.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer st.Close()
	return seedStore(ctx, st, tenants)
}

// pgSecrets lets realmhook read the secrets the bench seeds in plain text:
// ACE keeps them in plain text too. (Sealed secrets are opened once per
// tenant into the tenant cache, so they would not change the request's cost.)
const pgSecrets = "secrets:\n  plaintext: true\n"

// aceTable is the table ACE's sequelize adapter keeps tenants in (its model
// AddonSetting, pluralised by sequelize).
const aceTable = "AddonSettings"

// seedACE stores each tenant's clientInfo in ACE's table, as ACE's own
// /installed handler would (key "clientInfo", the install body as val).
func seedACE(ctx context.Context, url string, tenants []benchTenant) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("ace store: %w", err)
	}
	defer conn.Close(context.Background())
	rows := make([][]any, len(tenants))
	for i, t := range tenants {
		info, err := json.Marshal(map[string]any{
			"key": appKey, "clientKey": t.ClientKey, "sharedSecret": string(t.Secret),
			"baseUrl": tenantBaseURL(t.ClientKey), "productType": "jira", "eventType": "installed",
		})
		if err != nil {
			return err
		}
		rows[i] = []any{t.ClientKey, "clientInfo", string(info)}
	}
	_, err = conn.CopyFrom(ctx, pgx.Identifier{aceTable}, []string{"clientKey", "key", "val"}, pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("seed ace store: %w", err)
	}
	_, err = conn.Exec(ctx, `ANALYZE "`+aceTable+`"`)
	return err
}

// startACE runs bench/ace/app.js (from aceDir, its node_modules installed by
// npm ci) with workers processes, its store on the PostgreSQL database at
// storeURL, from a working directory holding the descriptor and config.json
// ACE reads.
func startACE(ctx context.Context, aceDir, dir string, workers int, storeURL string) (*process, error) {
	app, err := filepath.Abs(filepath.Join(aceDir, "app.js"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(aceDir, "node_modules", "atlassian-connect-express")); err != nil {
		return nil, fmt.Errorf("ace app: %w (run npm ci in %s; make bench does)", err, aceDir)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	descriptor := map[string]any{
		"key": appKey, "name": "realmhook bench ACE app", "baseUrl": "{{localBaseUrl}}" + euPath,
		"authentication": map[string]any{"type": "jwt"},
		"apiMigrations":  map[string]any{"signed-install": true},
		"lifecycle":      map[string]any{"installed": "/installed", "uninstalled": "/uninstalled"},
		"scopes":         []string{"READ"}, "modules": map[string]any{},
	}
	config := map[string]any{"production": map[string]any{
		"port": port, "localBaseUrl": base,
		// Sequelize logs every query at info unless told not to; a partner
		// in production turns that off.
		"store": map[string]any{"adapter": "sequelize", "dialect": "postgres", "url": storeURL, "logging": false},
	}}
	for name, v := range map[string]any{"atlassian-connect.json": descriptor, "config.json": config} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	cmd := exec.CommandContext(ctx, "node", app)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_ENV=production", "PORT="+strconv.Itoa(port), "WORKERS="+strconv.Itoa(workers), "BASE_PATH="+euPath)
	logFile, err := os.Create(filepath.Join(dir, "ace.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ace app (is node on PATH?): %w", err)
	}
	p := &process{name: "ace", cmd: cmd, base: base + euPath, root: base}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "listening ") {
				lines <- sc.Text()
			}
		}
		close(lines)
	}()
	select {
	case _, ok := <-lines:
		if !ok {
			p.stop()
			return nil, fmt.Errorf("ace app exited before listening; see %s", logFile.Name())
		}
	case <-time.After(60 * time.Second):
		p.stop()
		return nil, fmt.Errorf("ace app not listening after 60s; see %s", logFile.Name())
	}
	return p, nil
}

// runACE is the comparison with atlassian-connect-express: realmhook (its
// realms on PostgreSQL) and the ACE app as one process and as a cluster of
// one worker per core, ACE's store in the same PostgreSQL cluster, the same
// tenants and the very same tokens in each repetition.
func (m *Main) runACE(ctx context.Context, dir string, stop func(*process, error) (*process, error)) error {
	pg, err := startPostgres(ctx, "ace", "rh_global", "rh_us", "rh_eu")
	if err != nil {
		return err
	}
	defer func() { _ = pg.Stop() }()
	tenants := benchTenants(m.Small)
	fmt.Fprintf(m.Stdout, "seeding realmhook and ACE with %d tenants (PostgreSQL %s)…\n", m.Small, "throwaway cluster, fsync on")
	if err := seedPostgresRealm(ctx, pg.SocketURL("rh_eu"), tenants); err != nil {
		return err
	}
	rhDir := filepath.Join(dir, "rh-pg")
	rh, err := stop(runRealmhook(ctx, m.Realmhook, rhDir, rhConfig{LogLevel: m.LogLevel, Databases: map[string]string{
		"global": pg.SocketURL("rh_global"), "US": pg.SocketURL("rh_us"), "EU": pg.SocketURL("rh_eu"),
	}, Extra: pgSecrets}))
	if err != nil {
		return err
	}
	// The same realms served by realmhook as a library, with the route
	// answered from memory behind its middleware, as the ACE app answers it:
	// on its own port (the binary's config names one; the app takes the
	// next free one).
	self, err := os.Executable()
	if err != nil {
		return err
	}
	appDir := filepath.Join(dir, "rh-app")
	if err := writeAppConfig(rhDir, appDir); err != nil {
		return err
	}
	app, err := stop(startApp(ctx, self, appDir, m.LogLevel))
	if err != nil {
		return err
	}
	// The single process creates ACE's tables (sequelize sync) before the
	// cluster's workers start, so they do not race to create them.
	single, err := stop(startACE(ctx, m.ACE, filepath.Join(dir, "ace-1"), 1, pg.URL("ace")))
	if err != nil {
		return err
	}
	if err := seedACE(ctx, pg.SocketURL("ace"), tenants); err != nil {
		return err
	}
	workers := runtime.NumCPU()
	clustered, err := stop(startACE(ctx, m.ACE, filepath.Join(dir, "ace-cluster"), workers, pg.URL("ace")))
	if err != nil {
		return err
	}
	scenarios := []*scenario{
		{Name: fmt.Sprintf("realmhook GET (PostgreSQL, %s tenants)", countName(m.Small)), Target: &target{Name: "realmhook", BaseURL: rh.base, Tenants: tenants}},
		{Name: "realmhook library + app route from memory", Target: &target{Name: "realmhook-app", BaseURL: app.base, Tenants: tenants}},
		{Name: "ACE 11.5.3 GET, 1 process", Target: &target{Name: "ace", BaseURL: single.base, Tenants: tenants}},
		{Name: fmt.Sprintf("ACE 11.5.3 GET, cluster of %d", workers), Target: &target{Name: "ace-cluster", BaseURL: clustered.base, Tenants: tenants}},
	}
	fmt.Fprintf(m.Stdout, "ace: concurrency %d, runs of at most %s or %d requests, warm-up %s, %d repetitions; the same tokens to every server\n",
		m.Load.Concurrency, m.Load.Duration, m.Load.Requests, m.Load.Warmup, m.Reps)
	if err := m.interleave(ctx, scenarios, "GET"); err != nil {
		return err
	}
	sums := printTable(m.Stdout, scenarios)
	rhGet, rhApp, ace1, aceN := sums[0], sums[1], sums[2], sums[3]
	fmt.Fprintln(m.Stdout, "\ngoals:")
	check(m.Stdout, rhGet.PerSec/ace1.PerSec >= goalVsACE, "realmhook GET ÷ ACE 1 process = %.2f (goal ≥ %.0f); p99 %s vs %s",
		rhGet.PerSec/ace1.PerSec, goalVsACE, round(rhGet.P99), round(ace1.P99))
	check(m.Stdout, rhGet.PerSec/aceN.PerSec >= goalVsACECluster, "realmhook GET ÷ ACE cluster of %d = %.2f (goal ≥ %.0f); p99 %s vs %s",
		workers, rhGet.PerSec/aceN.PerSec, goalVsACECluster, round(rhGet.P99), round(aceN.P99))
	check(m.Stdout, rhApp.PerSec/ace1.PerSec >= goalVsACE, "realmhook app route ÷ ACE 1 process = %.2f (goal ≥ %.0f); p99 %s vs %s",
		rhApp.PerSec/ace1.PerSec, goalVsACE, round(rhApp.P99), round(ace1.P99))
	check(m.Stdout, rhApp.PerSec/aceN.PerSec >= goalVsACECluster, "realmhook app route ÷ ACE cluster of %d = %.2f (goal ≥ %.0f); p99 %s vs %s",
		workers, rhApp.PerSec/aceN.PerSec, goalVsACECluster, round(rhApp.P99), round(aceN.P99))
	return nil
}

// writeAppConfig copies the binary's configuration in from into to with
// another free port.
func writeAppConfig(from, to string) error {
	b, err := os.ReadFile(filepath.Join(from, "realmhook.yaml"))
	if err != nil {
		return err
	}
	cfg := string(b)
	oldListen, _, _ := strings.Cut(cfg, "\n")
	_, oldPort, _ := strings.Cut(strings.TrimPrefix(oldListen, "listen: "), ":")
	port, err := freePort()
	if err != nil {
		return err
	}
	cfg = strings.ReplaceAll(cfg, "127.0.0.1:"+oldPort, "127.0.0.1:"+strconv.Itoa(port))
	if err := os.MkdirAll(to, 0o750); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(to, "realmhook.yaml"), []byte(cfg), 0o600)
}

// interleave runs every scenario once per repetition, each repetition's
// servers getting the same pre-signed requests.
func (m *Main) interleave(ctx context.Context, scenarios []*scenario, method string) error {
	rnd := newRand()
	for rep := 1; rep <= m.Reps; rep++ {
		warm, err := signRequests(scenarios[0].Target.Tenants, method, max(m.Load.Concurrency*4, m.Load.Requests/10), rnd)
		if err != nil {
			return err
		}
		reqs, err := signRequests(scenarios[0].Target.Tenants, method, m.Load.Requests, rnd)
		if err != nil {
			return err
		}
		for _, sc := range scenarios {
			res, err := measureWith(ctx, *sc.Target, m.Load, warm, reqs)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.Name, err)
			}
			sc.Runs = append(sc.Runs, res)
			fmt.Fprintf(m.Stderr, "rep %d %-40s %8.0f req/s  p50 %-9s p99 %s\n", rep, sc.Name, res.perSec(), round(res.P50), round(res.P99))
		}
	}
	return nil
}
