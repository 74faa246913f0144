package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store/sqlite" // also registers the "sqlite" database/sql driver
)

// sqliteFiles are the databases of one tenant size.
type sqliteFiles struct {
	Source, Target, Baseline string
}

// benchSQLite runs every size: generate, copy with realmhook in a child, copy
// with the sqlite3 shell, compare.
func (m *Main) benchSQLite(ctx context.Context) ([]result, error) {
	dir := m.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "copybench-")
		if err != nil {
			return nil, fmt.Errorf("work dir: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if !m.SkipBaseline {
		if _, err := exec.LookPath("sqlite3"); err != nil {
			return nil, fmt.Errorf("the baseline needs the sqlite3 shell (apt-get install sqlite3, or -skip-baseline): %w", err)
		}
	}
	var results []result
	for _, rows := range m.Rows {
		m.progress("sqlite %d rows: generating source data", rows)
		files, err := prepareSQLite(ctx, filepath.Join(dir, "sqlite-"+strconv.Itoa(rows)), m.shape, rows, m.Logger)
		if err != nil {
			return nil, err
		}
		m.progress("sqlite %d rows: copying with realmhook", rows)
		res, rss, err := m.spawnCopy(ctx, copySpec{Backend: "sqlite", Shape: m.Shape, Source: files.Source, Target: files.Target,
			Rows: rows, Batch: m.Batch, Checkpoint: m.Checkpoint, CPUProfile: m.profilePath(rows)})
		if err != nil {
			return nil, err
		}
		r := result{Backend: "sqlite", Rows: rows, copyResult: res, PeakRSS: rss}
		if !m.SkipBaseline {
			m.progress("sqlite %d rows: copying with the sqlite3 shell", rows)
			if r.Baseline, r.BaselinePeakRSS, err = sqliteBaseline(ctx, files, m.shape, rows); err != nil {
				return nil, err
			}
		}
		results = append(results, r)
		// The next size needs the disk more than these files.
		for _, p := range []string{files.Source, files.Target, files.Baseline} {
			removeSQLite(p)
		}
	}
	return results, nil
}

// prepareSQLite creates, in dir, a source holding the tenant's rows and the
// other tenant's, an empty target and an empty baseline target, all with
// realmhook's schema and the shape's app tables.
func prepareSQLite(ctx context.Context, dir string, shape []benchTable, rows int, log *slog.Logger) (sqliteFiles, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return sqliteFiles{}, fmt.Errorf("work dir: %w", err)
	}
	f := sqliteFiles{
		Source:   filepath.Join(dir, "source.db"),
		Target:   filepath.Join(dir, "target.db"),
		Baseline: filepath.Join(dir, "baseline.db"),
	}
	for _, p := range []string{f.Source, f.Target, f.Baseline} {
		removeSQLite(p)
		st, err := sqlite.Open(ctx, p, sqlite.Options{Logger: log})
		if err != nil {
			return f, err
		}
		if p == f.Source {
			err = putTenants(ctx, st)
		}
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return f, err
		}
		if err := execSQLite(ctx, p, ddl(shape, "sqlite")...); err != nil {
			return f, err
		}
	}
	stmts := genStatements(shape, "sqlite", rows)
	stmts = append(stmts, "ANALYZE")
	if err := execSQLite(ctx, f.Source, stmts...); err != nil {
		return f, fmt.Errorf("generate: %w", err)
	}
	return f, nil
}

// putTenants stores both tenants as active in the source realm.
func putTenants(ctx context.Context, st interface {
	PutTenant(context.Context, *realmhook.Tenant, ...realmhook.Event) error
}) error {
	now := time.Now().UTC()
	for _, key := range []string{benchTenant, otherTenant} {
		t := &realmhook.Tenant{ClientKey: key, SharedSecret: "bench-only-secret", BaseURL: "https://" + key + ".example.com",
			ProductType: "jira", State: realmhook.TenantActive, Enabled: true, InstalledAt: now, UpdatedAt: now}
		if err := st.PutTenant(ctx, t); err != nil {
			return fmt.Errorf("tenant %s: %w", key, err)
		}
	}
	return nil
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
		return fmt.Errorf("begin on %s: %w", path, err)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("%s: %s: %w", path, firstLine(s), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit on %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return nil
}

// countSQLite counts a tenant's rows in every table of the shape in path.
func countSQLite(ctx context.Context, path string, shape []benchTable, tenant string) (int64, error) {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	var total int64
	for _, t := range shape {
		var n int64
		err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t.table.Name+` WHERE `+t.table.TenantColumn+` = ?`, tenant).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("count in %s: %w", path, err)
		}
		total += n
	}
	return total, nil
}

// sqliteBaseline copies the tenant's rows into the baseline target with the
// sqlite3 shell (ATTACH + INSERT … SELECT in one transaction, the same
// synchronous setting as the store) and returns its wall time and peak RSS.
func sqliteBaseline(ctx context.Context, f sqliteFiles, shape []benchTable, rows int) (time.Duration, int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "PRAGMA synchronous=NORMAL;\nATTACH '%s' AS src;\nBEGIN;\n", strings.ReplaceAll(f.Source, "'", "''"))
	for _, t := range shape {
		fmt.Fprintf(&b, "INSERT INTO main.%[1]s (%[2]s) SELECT %[2]s FROM src.%[1]s WHERE %[3]s = '%[4]s';\n",
			t.table.Name, t.columns, t.table.TenantColumn, benchTenant)
	}
	b.WriteString("COMMIT;\n")
	script := b.String()
	cmd := exec.CommandContext(ctx, "sqlite3", "-bail", f.Baseline)
	cmd.Stdin = strings.NewReader(script)
	began := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(began)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite3 baseline: %w: %s", err, out)
	}
	n, err := countSQLite(ctx, f.Baseline, shape, benchTenant)
	if err != nil {
		return 0, 0, err
	}
	if n != int64(rows) {
		return 0, 0, fmt.Errorf("sqlite3 baseline copied %d rows, want %d", n, rows)
	}
	return took, peakRSS(cmd.ProcessState), nil
}

// removeSQLite deletes a database file with its WAL and shared-memory files.
func removeSQLite(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			slog.Warn("remove", "path", p, "err", err)
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
