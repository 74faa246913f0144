package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/internal/pgcluster"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/postgres"
	"github.com/realmhook/realmhook/store/sqlite" // also registers the "sqlite" database/sql driver
)

// migrationFlags are the sizes and loads of the suites that migrate a tenant
// through the realmhook binary's hooks, as the host would.
type migrationFlags struct {
	StatusRows     int
	StatusBackends []string
	StatusReps     int
	Pollers        int
	PollEvery      time.Duration
	WindowRows     []int
	ScaleTenants   []int
	MigrateTimeout time.Duration

	statusBackends, windowRows, scaleTenants string
}

func (m *Main) addMigrationFlags(fs *flag.FlagSet) {
	f := &m.Migr
	fs.IntVar(&f.StatusRows, "status-rows", 1000000, "status suite: the tenant's rows (a tenth properties, the rest an app table)")
	fs.StringVar(&f.statusBackends, "status-backends", "sqlite,postgres", "status suite: backends to run, comma-separated")
	fs.IntVar(&f.StatusReps, "status-reps", 1, "status suite: pairs of copies (alone, with pollers), interleaved")
	fs.IntVar(&f.Pollers, "pollers", 500, "status suite: concurrent /status pollers")
	fs.DurationVar(&f.PollEvery, "poll-every", 100*time.Millisecond, "status suite: each poller's interval")
	fs.StringVar(&f.windowRows, "window-rows", "10000,100000,1000000", "window suite: tenant sizes in rows, comma-separated")
	fs.StringVar(&f.scaleTenants, "scale-tenants", "1000,10000,100000", "scale suite: tenant counts, comma-separated")
	fs.DurationVar(&f.MigrateTimeout, "migrate-timeout", 30*time.Minute, "longest a migration may take to reach ready-to-commit")
}

func (m *Main) checkMigrationFlags() error {
	f := &m.Migr
	var err error
	if f.WindowRows, err = parseCounts("-window-rows", f.windowRows, 10); err != nil {
		return err
	}
	if f.ScaleTenants, err = parseCounts("-scale-tenants", f.scaleTenants, 1); err != nil {
		return err
	}
	f.StatusBackends = nil
	for _, b := range strings.Split(f.statusBackends, ",") {
		switch b = strings.TrimSpace(b); b {
		case "sqlite", "postgres":
			f.StatusBackends = append(f.StatusBackends, b)
		default:
			return fmt.Errorf("-status-backends %q: want sqlite or postgres", b)
		}
	}
	if f.StatusRows < 10 || f.StatusReps < 1 || f.Pollers < 1 || f.PollEvery <= 0 {
		return fmt.Errorf("-status-rows (at least 10), -status-reps, -pollers and -poll-every must be positive")
	}
	return nil
}

// parseCounts reads a comma-separated list of counts of at least least.
func parseCounts(flagName, s string, least int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < least {
			return nil, fmt.Errorf("%s: %q is not a count of at least %d", flagName, f, least)
		}
		out = append(out, n)
	}
	return out, nil
}

// The migrated tenant, the realms it moves between, and the app table that
// holds most of its rows (as copybench's).
const (
	migTenant   = "bench-migrating-tenant"
	migFrom     = "US"
	migTo       = "EU"
	migFromPath = "/realms/us"
	notesConfig = "tables:\n  - { name: notes, tenantColumn: tenant, key: [id] }\n"
)

const (
	sqliteNotesDDL = `CREATE TABLE notes (tenant TEXT NOT NULL, id INTEGER NOT NULL, body TEXT NOT NULL,
		score REAL NOT NULL, PRIMARY KEY (tenant, id))`
	pgNotesDDL = `CREATE TABLE notes (tenant TEXT NOT NULL, id BIGINT NOT NULL, body TEXT NOT NULL,
		score DOUBLE PRECISION NOT NULL, PRIMARY KEY (tenant, id))`
)

// splitRows divides a tenant's rows: a tenth properties, the rest notes.
func splitRows(rows int) (props, notes int) { return rows / 10, rows - rows/10 }

// migEnv is a realmhook process serving US (the tenant's home, holding its
// rows) and EU (empty), on one backend.
type migEnv struct {
	proc    *process
	tenant  benchTenant
	rows    int
	sources string // the US database, to read the migration's events from
	backend string
	n       int // migrations run, for fresh ids
}

// prepareMigration creates the three realms' databases on backend (in dir,
// or in pg), the tenant with rows rows in US, and starts realmhook on them.
func (m *Main) prepareMigration(ctx context.Context, backend, dir string, pg *pgcluster.Cluster, rows int, keep func(*process, error) (*process, error)) (*migEnv, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	ten := benchTenants(1)[0]
	ten.ClientKey = migTenant
	dbs := map[string]string{}
	log := slog.New(slog.DiscardHandler)
	props, notes := splitRows(rows)
	switch backend {
	case "sqlite":
		for _, realm := range []string{"global", "US", "EU"} {
			path := filepath.Join(dir, strings.ToLower(realm)+".db")
			st, err := sqlite.Open(ctx, path, sqlite.Options{Logger: log})
			if err != nil {
				return nil, err
			}
			if realm == migFrom {
				err = putMigratingTenant(ctx, st, ten)
			}
			if cerr := st.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
			stmts := []string{sqliteNotesDDL}
			if realm == migFrom {
				stmts = append(stmts,
					fmt.Sprintf(`WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < %d)
						INSERT INTO realmhook_properties (client_key, key, value)
						SELECT '%s', printf('prop/%%09d', i), '{"n":' || i || ',"text":"' || hex(randomblob(72)) || '"}' FROM g`, props, migTenant),
					fmt.Sprintf(`WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < %d)
						INSERT INTO notes (tenant, id, body, score) SELECT '%s', i, hex(randomblob(84)), i / 7.0 FROM g`, notes, migTenant),
					"ANALYZE")
			}
			if err := execSQLite(ctx, path, stmts...); err != nil {
				return nil, err
			}
			dbs[realm] = "sqlite:" + path
		}
	case "postgres":
		for _, realm := range []string{"global", "US", "EU"} {
			db := fmt.Sprintf("mig_%s_%s", strings.ToLower(realm), filepath.Base(dir))
			db = strings.NewReplacer("-", "_", ".", "_").Replace(db)
			if err := pgExec(ctx, pg.SocketURL("postgres"), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)", "CREATE DATABASE "+db); err != nil {
				return nil, err
			}
			url := pg.SocketURL(db)
			st, err := postgres.Open(ctx, url, postgres.Options{Logger: log})
			if err != nil {
				return nil, err
			}
			if realm == migFrom {
				err = putMigratingTenant(ctx, st, ten)
			}
			if cerr := st.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
			stmts := []string{pgNotesDDL}
			if realm == migFrom {
				stmts = append(stmts,
					fmt.Sprintf(`INSERT INTO realmhook_properties (client_key, key, value)
						SELECT '%s', 'prop/' || lpad(i::text, 9, '0'), json_build_object('n', i, 'text', md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text) || md5((i + 3)::text) || md5((i + 4)::text))::text
						FROM generate_series(1, %d) AS i`, migTenant, props),
					fmt.Sprintf(`INSERT INTO notes (tenant, id, body, score)
						SELECT '%s', i, md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text) || md5((i + 3)::text) || md5((i + 4)::text) || md5((i + 5)::text), i / 7.0
						FROM generate_series(1, %d) AS i`, migTenant, notes),
					"VACUUM ANALYZE")
			}
			if err := pgExec(ctx, url, stmts...); err != nil {
				return nil, err
			}
			dbs[realm] = url
		}
		// Generation's dirty pages are flushed now, not during the copy.
		if err := pgExec(ctx, pg.SocketURL("postgres"), "CHECKPOINT"); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("backend %q", backend)
	}
	extra := notesConfig
	if backend == "postgres" {
		extra += pgSecrets
	}
	// warn: the access log of 5,000 polls a second would measure the log.
	p, err := keep(runRealmhook(ctx, m.Realmhook, dir, rhConfig{LogLevel: "warn", Databases: dbs, Extra: extra}))
	if err != nil {
		return nil, err
	}
	return &migEnv{proc: p, tenant: ten, rows: rows, sources: dbs[migFrom], backend: backend}, nil
}

// putMigratingTenant stores the tenant as installed in its home realm.
func putMigratingTenant(ctx context.Context, st store.Store, t benchTenant) error {
	now := time.Now().UTC()
	return st.PutTenant(ctx, &realmhook.Tenant{
		ClientKey: t.ClientKey, SharedSecret: string(t.Secret), BaseURL: tenantBaseURL(t.ClientKey),
		ProductType: "jira", AppKey: appKey, State: realmhook.TenantActive, Enabled: true, InstalledAt: now, UpdatedAt: now,
	})
}

// execSQLite runs statements on path in one transaction, then folds the WAL
// back into the file so that no copy starts with a checkpoint to do.
func execSQLite(ctx context.Context, path string, stmts ...string) error {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("%s: %.60s: %w", path, s, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

// hookURL is a migration hook's URL in the tenant's home realm.
func (e *migEnv) hookURL(hook, id string) string {
	u := e.proc.root + migFromPath + "/dare-migration/" + hook
	if hook == "status" {
		u += "?migrationId=" + id
	}
	return u
}

// call sends one migration hook, HS256-signed as the tenant, as the host does.
func (e *migEnv) call(ctx context.Context, client *http.Client, method, hook, id string, body any) (int, []byte, error) {
	u := e.hookURL(hook, id)
	tok, err := connectjwt.Signer{TTL: time.Hour}.HS256(e.tenant.Secret, e.tenant.ClientKey, method, u, e.proc.root+migFromPath)
	if err != nil {
		return 0, nil, err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "JWT "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// migTiming is one migration from /start to ready-to-commit, from the
// migration's own events.
type migTiming struct {
	Wall, Copy, Verify time.Duration
}

// migrate runs one migration of the tenant to EU up to ready-to-commit,
// polling /status as the host does (every hostPoll), and returns its timing.
// during, if not nil, runs from /start until ready-to-commit.
func (e *migEnv) migrate(ctx context.Context, timeout time.Duration, during func(ctx context.Context, id string) func()) (migTiming, string, error) {
	e.n++
	id := fmt.Sprintf("bench-%d-%d", time.Now().Unix(), e.n)
	client := newClient(4)
	defer client.CloseIdleConnections()
	now := time.Now().UTC()
	body := map[string]string{"migrationId": id, "location": migTo,
		"startTime": now.Format(time.RFC3339), "endTime": now.Add(24 * time.Hour).Format(time.RFC3339)}
	for _, hook := range []string{"schedule", "start"} {
		code, b, err := e.call(ctx, client, http.MethodPost, hook, id, body)
		if err != nil || code != http.StatusOK {
			return migTiming{}, id, fmt.Errorf("%s: %d %s %v", hook, code, b, err)
		}
	}
	began := time.Now()
	var stop func()
	if during != nil {
		stop = during(ctx, id)
	}
	state, err := e.pollUntil(ctx, client, id, timeout, realmhook.MigrationReadyToCommit, realmhook.MigrationFailed)
	if stop != nil {
		stop()
	}
	if err != nil {
		return migTiming{}, id, err
	}
	if state != realmhook.MigrationReadyToCommit {
		return migTiming{}, id, fmt.Errorf("migration %s ended %s", id, state)
	}
	t, err := e.timing(ctx, id)
	if err != nil {
		return migTiming{}, id, err
	}
	if t.Wall <= 0 {
		t.Wall = time.Since(began)
	}
	return t, id, nil
}

// hostPoll is how often the bench's host polls /status.
const hostPoll = 50 * time.Millisecond

// pollUntil polls /status until the state is one of want.
func (e *migEnv) pollUntil(ctx context.Context, client *http.Client, id string, timeout time.Duration, want ...realmhook.MigrationState) (realmhook.MigrationState, error) {
	deadline := time.Now().Add(timeout)
	for {
		code, b, err := e.call(ctx, client, http.MethodGet, "status", id, nil)
		if err != nil {
			return "", fmt.Errorf("status: %w", err)
		}
		var v struct {
			Status string `json:"status"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &v) != nil {
			return "", fmt.Errorf("status: %d %.200s", code, b)
		}
		for _, w := range want {
			if v.Status == string(w) {
				return w, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("migration %s still %s after %s", id, v.Status, timeout)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(hostPoll):
		}
	}
}

// rollback undoes migration id and waits until it is rolled back, so the
// next migration starts from the same place.
func (e *migEnv) rollback(ctx context.Context, id string, timeout time.Duration) error {
	client := newClient(2)
	defer client.CloseIdleConnections()
	code, b, err := e.call(ctx, client, http.MethodPost, "rollback", id, map[string]string{"migrationId": id})
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("rollback: %d %s %v", code, b, err)
	}
	_, err = e.pollUntil(ctx, client, id, timeout, realmhook.MigrationRolledBack)
	return err
}

// timing reads the migration's events from the source database: /start's
// transition out of scheduled, copying → verifying, and ready-to-commit.
func (e *migEnv) timing(ctx context.Context, id string) (migTiming, error) {
	log := slog.New(slog.DiscardHandler)
	var st store.Store
	var err error
	if path, ok := strings.CutPrefix(e.sources, "sqlite:"); ok {
		st, err = sqlite.Open(ctx, path, sqlite.Options{Logger: log})
	} else {
		st, err = postgres.Open(ctx, e.sources, postgres.Options{Logger: log})
	}
	if err != nil {
		return migTiming{}, err
	}
	defer st.Close()
	events, err := st.ListMigrationEvents(ctx, migTenant, id)
	if err != nil {
		return migTiming{}, err
	}
	var started, verifying, ready time.Time
	for _, ev := range events {
		switch {
		case ev.From == realmhook.MigrationScheduled && started.IsZero():
			started = ev.At
		case ev.To == realmhook.MigrationVerifying && ev.From != ev.To:
			verifying = ev.At
		case ev.To == realmhook.MigrationReadyToCommit:
			ready = ev.At
		}
	}
	if started.IsZero() || verifying.IsZero() || ready.IsZero() {
		return migTiming{}, errors.New("the migration's events lack start, verifying or ready-to-commit")
	}
	return migTiming{Wall: ready.Sub(started), Copy: verifying.Sub(started), Verify: ready.Sub(verifying)}, nil
}
