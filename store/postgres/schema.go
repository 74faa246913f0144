package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaNewer is returned by Open when the database was migrated by a newer
// realmhook than this one: running on it could corrupt data the newer schema
// relies on.
var ErrSchemaNewer = errors.New("database schema is newer than this realmhook binary supports; upgrade realmhook")

// schemaLockKey is the pg_advisory_xact_lock key that serialises schema
// migration between processes starting at once ("realmhk" in ASCII).
const schemaLockKey int64 = 0x7265616c6d686b

// schemaMigration is one embedded migrations/NNNN_name.sql file.
type schemaMigration struct {
	version int
	name    string
	sql     string
}

// schemaMigrations returns the embedded migrations in version order.
func schemaMigrations() ([]schemaMigration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []schemaMigration
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("embedded migration %s: name must start with a positive version number and '_'", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read embedded migration %s: %w", e.Name(), err)
		}
		ms = append(ms, schemaMigration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := range ms {
		if ms[i].version != i+1 {
			return nil, fmt.Errorf("embedded migration %s: versions must run 1, 2, 3… without gaps", ms[i].name)
		}
	}
	return ms, nil
}

// migrate applies pending migrations in one transaction holding an advisory
// lock, so replicas starting together apply each migration exactly once.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := schemaMigrations()
	if err != nil {
		return err
	}
	latest := len(ms)
	return s.run(ctx, false, func(ctx context.Context) error {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return fmt.Errorf("migrate schema: %w", err)
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", schemaLockKey); err != nil {
			return fmt.Errorf("migrate schema: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS realmhook_schema_version (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("migrate schema: create version table: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM realmhook_schema_version").Scan(&current); err != nil {
			return fmt.Errorf("migrate schema: read version: %w", err)
		}
		if current > latest {
			return fmt.Errorf("database schema version %d, this binary knows up to %d: %w", current, latest, ErrSchemaNewer)
		}
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, m.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
				return fmt.Errorf("migrate schema: apply %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO realmhook_schema_version (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return fmt.Errorf("migrate schema: record %s: %w", m.name, err)
			}
			s.logger.Info("applied schema migration", "backend", "postgres", "migration", m.name)
		}
		if err := tx.Commit(ctx); err != nil {
			return &finalError{fmt.Errorf("migrate schema: commit: %w", err)}
		}
		return nil
	})
}
