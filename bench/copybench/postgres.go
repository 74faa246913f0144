package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/realmhook/realmhook/store/postgres"
)

// twin is the baseline's copy of a table in the target database, made LIKE
// it, indexes included.
func twin(t benchTable) string { return "bench_baseline_" + t.table.Name }

// benchPostgres runs every size: generate in one database, copy to another
// with realmhook in a child, then with psql's binary COPY, compare.
func (m *Main) benchPostgres(ctx context.Context) ([]result, error) {
	if !m.SkipBaseline {
		if _, err := exec.LookPath("psql"); err != nil {
			return nil, fmt.Errorf("the baseline needs psql (apt-get install postgresql-client, or -skip-baseline): %w", err)
		}
	}
	srv, err := openPGServer(ctx)
	if err != nil {
		return nil, err
	}
	if srv.stop != nil {
		defer func() {
			if err := srv.stop(); err != nil {
				m.progress("stop postgres: %v", err)
			}
		}()
	}
	var results []result
	for _, rows := range m.Rows {
		srcDB, dstDB := "rhbench_source_"+strconv.Itoa(rows), "rhbench_target_"+strconv.Itoa(rows)
		m.progress("postgres %d rows: generating source data", rows)
		if err := preparePostgres(ctx, srv, srcDB, dstDB, m.shape, rows, m.Logger); err != nil {
			return nil, err
		}
		src, dst := srv.dbURL(srcDB), srv.dbURL(dstDB)
		// Generation's dirty pages are flushed now, not during the copy.
		if err := pgExec(ctx, srv.admin, "CHECKPOINT"); err != nil {
			m.progress("checkpoint (needs superuser; timings may include flushing generated data): %v", err)
		}
		m.progress("postgres %d rows: copying with realmhook", rows)
		res, rss, err := m.spawnCopy(ctx, copySpec{Backend: "postgres", Shape: m.Shape, Source: src, Target: dst,
			Rows: rows, Batch: m.Batch, Checkpoint: m.Checkpoint, CPUProfile: m.profilePath(rows), Transfer: m.Transfer})
		if err != nil {
			return nil, err
		}
		label := "postgres"
		if m.Transfer {
			label = regionalLabel
		}
		r := result{Backend: label, Rows: rows, copyResult: res, PeakRSS: rss}
		if !m.SkipBaseline {
			_ = pgExec(ctx, srv.admin, "CHECKPOINT")
			m.progress("postgres %d rows: copying with psql COPY (FORMAT binary)", rows)
			if r.Baseline, r.BaselinePeakRSS, err = pgBaseline(ctx, src, dst, m.shape, rows); err != nil {
				return nil, err
			}
		}
		results = append(results, r)
		for _, db := range []string{srcDB, dstDB} {
			if err := pgExec(ctx, srv.admin, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
				m.progress("drop %s: %v", db, err)
			}
		}
	}
	return results, nil
}

// preparePostgres (re)creates the source database holding the tenant's rows
// and the other tenant's, and the target database with realmhook's schema,
// the notes table and the baseline's empty twins, all with their indexes.
func preparePostgres(ctx context.Context, srv *pgServer, srcDB, dstDB string, shape []benchTable, rows int, log *slog.Logger) error {
	for _, db := range []string{srcDB, dstDB} {
		if err := pgExec(ctx, srv.admin, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)", "CREATE DATABASE "+db); err != nil {
			return err
		}
		st, err := postgres.Open(ctx, srv.dbURL(db), postgres.Options{Logger: log})
		if err != nil {
			return fmt.Errorf("schema of %s: %w", db, err)
		}
		if db == srcDB {
			err = putTenants(ctx, st)
		}
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	twins := ddl(shape, "postgres")
	for _, t := range shape {
		twins = append(twins, "CREATE TABLE "+twin(t)+" (LIKE "+t.table.Name+" INCLUDING ALL)")
	}
	if err := pgExec(ctx, srv.dbURL(dstDB), twins...); err != nil {
		return err
	}
	stmts := append(ddl(shape, "postgres"), genStatements(shape, "postgres", rows)...)
	if err := pgExec(ctx, srv.dbURL(srcDB), stmts...); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	// Visibility map and statistics, so the copy's reads see a settled table.
	return pgExec(ctx, srv.dbURL(srcDB), "VACUUM ANALYZE")
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
			return fmt.Errorf("%s: %w", firstLine(s), err)
		}
	}
	return nil
}

// pgBaseline copies the tenant's rows of each table into its twin in the
// target with `psql -c "COPY (SELECT …) TO STDOUT (FORMAT binary)" | psql -c
// "COPY twin FROM STDIN (FORMAT binary)"`, and returns the wall time over both
// tables and the largest peak RSS of any psql.
func pgBaseline(ctx context.Context, src, dst string, shape []benchTable, rows int) (time.Duration, int64, error) {
	var took time.Duration
	var rss int64
	for _, bt := range shape {
		t := struct{ source, twin, tenantColumn, columns string }{bt.table.Name, twin(bt), bt.table.TenantColumn, bt.columns}
		out := exec.CommandContext(ctx, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", src,
			"-c", fmt.Sprintf("COPY (SELECT %s FROM %s WHERE %s = '%s') TO STDOUT (FORMAT binary)", t.columns, t.source, t.tenantColumn, benchTenant))
		in := exec.CommandContext(ctx, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dst,
			"-c", fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary)", t.twin, t.columns))
		pr, pw, err := os.Pipe()
		if err != nil {
			return 0, 0, fmt.Errorf("pipe: %w", err)
		}
		out.Stdout, in.Stdin = pw, pr
		out.Stderr, in.Stderr = os.Stderr, os.Stderr
		began := time.Now()
		err = out.Start()
		if err == nil {
			if err = in.Start(); err != nil {
				_ = out.Process.Kill()
				_ = out.Wait()
			}
		}
		// The children hold their own ends; ours would keep the reader from
		// ever seeing end of file.
		pw.Close()
		pr.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("baseline %s: %w", t.source, err)
		}
		errOut, errIn := out.Wait(), in.Wait()
		took += time.Since(began)
		if err := errors.Join(errOut, errIn); err != nil {
			return 0, 0, fmt.Errorf("baseline %s: psql: %w", t.source, err)
		}
		rss = max(rss, peakRSS(out.ProcessState), peakRSS(in.ProcessState))
	}
	conn, err := pgx.Connect(ctx, dst)
	if err != nil {
		return 0, 0, fmt.Errorf("baseline count: %w", err)
	}
	defer conn.Close(context.Background())
	var n int64
	for _, t := range shape {
		var c int64
		if err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM "+twin(t)).Scan(&c); err != nil {
			return 0, 0, fmt.Errorf("baseline count: %w", err)
		}
		n += c
	}
	if n != int64(rows) {
		return 0, 0, fmt.Errorf("psql baseline copied %d rows, want %d", n, rows)
	}
	return took, rss, nil
}
