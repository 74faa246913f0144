package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

const migrationColumns = `client_key, id, source_realm, target_realm, state, start_time, end_time,
	error_response_code, message, tables_done, tables_total, rows_copied, rows_total, checkpoint,
	created_at, updated_at`

func migrationArgs(m *realmhook.Migration) []any {
	return []any{m.ClientKey, m.ID, m.SourceRealm, m.TargetRealm, string(m.State),
		microsOrNull(m.StartTime), microsOrNull(m.EndTime), m.ErrorResponseCode, m.Message,
		m.Progress.TablesDone, m.Progress.TablesTotal, m.Progress.RowsCopied, m.Progress.RowsTotal, m.Checkpoint,
		microsOrNull(m.CreatedAt), microsOrNull(m.UpdatedAt)}
}

func scanMigration(row scanner) (*realmhook.Migration, error) {
	var m realmhook.Migration
	var start, end, created, updated sql.NullInt64
	if err := row.Scan(&m.ClientKey, &m.ID, &m.SourceRealm, &m.TargetRealm, &m.State, &start, &end,
		&m.ErrorResponseCode, &m.Message, &m.Progress.TablesDone, &m.Progress.TablesTotal,
		&m.Progress.RowsCopied, &m.Progress.RowsTotal, &m.Checkpoint, &created, &updated); err != nil {
		return nil, err
	}
	m.StartTime, m.EndTime = timeFromMicros(start), timeFromMicros(end)
	m.CreatedAt, m.UpdatedAt = timeFromMicros(created), timeFromMicros(updated)
	return &m, nil
}

func validMigration(m *realmhook.Migration) error {
	if m == nil || m.ClientKey == "" || m.ID == "" {
		return realmhook.Errorf(realmhook.EINVALID, "migration clientKey and id are required")
	}
	if m.State == "" {
		return realmhook.Errorf(realmhook.EINVALID, "migration %s has no state", m.ID)
	}
	return nil
}

func (s *Store) insertEvent(ctx context.Context, tx *sql.Tx, m *realmhook.Migration, from realmhook.MigrationState, detail string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO realmhook_migration_events (at, client_key, migration_id, from_state, to_state, detail)
		VALUES (?, ?, ?, ?, ?, ?)`, s.now().UnixMicro(), m.ClientKey, m.ID, string(from), string(m.State), detail)
	if err != nil {
		return s.errorf("write event: %w", err)
	}
	return nil
}

// CreateMigration inserts a new migration and its first event.
func (s *Store) CreateMigration(ctx context.Context, m *realmhook.Migration) error {
	return s.CreateMigrationWithin(ctx, m, store.Limit{})
}

// CreateMigrationWithin inserts m and counts the limited migrations in one
// write transaction: BEGIN IMMEDIATE takes the database's write lock first,
// so every process's count sees every other's committed create.
func (s *Store) CreateMigrationWithin(ctx context.Context, m *realmhook.Migration, lim store.Limit) error {
	if err := validMigration(m); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO realmhook_migrations (`+migrationColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, migrationArgs(m)...)
		if isUniqueViolation(err) {
			return realmhook.Errorf(realmhook.ECONFLICT, "migration %s of tenant %q already exists", m.ID, m.ClientKey)
		} else if err != nil {
			return err
		}
		if lim.Max > 0 && len(lim.States) > 0 {
			args := make([]any, len(lim.States))
			for i, st := range lim.States {
				args[i] = string(st)
			}
			var n int
			q := `SELECT count(*) FROM realmhook_migrations WHERE state IN (?` + strings.Repeat(", ?", len(args)-1) + `)`
			if err := tx.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
				return err
			}
			if n > lim.Max {
				return store.LimitReached(n-1, lim.Max)
			}
		}
		return s.insertEvent(ctx, tx, m, "", "")
	})
	if err != nil {
		return s.errorf("create migration %s/%s: %w", m.ClientKey, m.ID, err)
	}
	return nil
}

// GetMigration returns one migration.
func (s *Store) GetMigration(ctx context.Context, clientKey, id string) (*realmhook.Migration, error) {
	m, err := scanMigration(s.r.QueryRowContext(ctx, `SELECT `+migrationColumns+` FROM realmhook_migrations
		WHERE client_key = ? AND id = ?`, clientKey, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "migration %s of tenant %q not found", id, clientKey)
	} else if err != nil {
		return nil, s.errorf("get migration %s/%s: %w", clientKey, id, err)
	}
	return m, nil
}

// UpdateMigration writes m if the stored state is still from, and records an
// event when the state changes.
func (s *Store) UpdateMigration(ctx context.Context, m *realmhook.Migration, from realmhook.MigrationState, detail string, events ...realmhook.Event) error {
	if err := validMigration(m); err != nil {
		return err
	}
	if err := store.CheckEvents(events); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		args := append(migrationArgs(m)[2:], m.ClientKey, m.ID, string(from))
		res, err := tx.ExecContext(ctx, `UPDATE realmhook_migrations SET source_realm = ?, target_realm = ?, state = ?,
			start_time = ?, end_time = ?, error_response_code = ?, message = ?, tables_done = ?, tables_total = ?,
			rows_copied = ?, rows_total = ?, checkpoint = ?, created_at = ?, updated_at = ?
			WHERE client_key = ? AND id = ? AND state = ?`, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			var current string
			err := tx.QueryRowContext(ctx, `SELECT state FROM realmhook_migrations WHERE client_key = ? AND id = ?`, m.ClientKey, m.ID).Scan(&current)
			if errors.Is(err, sql.ErrNoRows) {
				return realmhook.Errorf(realmhook.ENOTFOUND, "migration %s of tenant %q not found", m.ID, m.ClientKey)
			} else if err != nil {
				return err
			}
			return realmhook.Errorf(realmhook.ECONFLICT, "migration %s is %s, not %s", m.ID, current, from)
		}
		if err := insertEvents(ctx, tx, events); err != nil {
			return err
		}
		if m.State == from {
			return nil
		}
		return s.insertEvent(ctx, tx, m, from, detail)
	})
	if err != nil {
		return s.errorf("update migration %s/%s: %w", m.ClientKey, m.ID, err)
	}
	return nil
}

// PutMigration inserts or replaces a migration record without an event.
func (s *Store) PutMigration(ctx context.Context, m *realmhook.Migration) error {
	if err := validMigration(m); err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, `INSERT OR REPLACE INTO realmhook_migrations (`+migrationColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, migrationArgs(m)...); err != nil {
		return s.errorf("put migration %s/%s: %w", m.ClientKey, m.ID, err)
	}
	return nil
}

// ListMigrations returns migrations in any of the given states (all when none
// are given), oldest first.
func (s *Store) ListMigrations(ctx context.Context, states ...realmhook.MigrationState) ([]*realmhook.Migration, error) {
	q := `SELECT ` + migrationColumns + ` FROM realmhook_migrations`
	var args []any
	if len(states) > 0 {
		q += ` WHERE state IN (?` + strings.Repeat(`, ?`, len(states)-1) + `)`
		for _, st := range states {
			args = append(args, string(st))
		}
	}
	q += ` ORDER BY created_at, client_key, id`
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.errorf("list migrations: %w", err)
	}
	defer rows.Close()
	var out []*realmhook.Migration
	for rows.Next() {
		m, err := scanMigration(rows)
		if err != nil {
			return nil, s.errorf("list migrations: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("list migrations: %w", err)
	}
	return out, nil
}

// ListMigrationEvents returns a migration's events, oldest first.
func (s *Store) ListMigrationEvents(ctx context.Context, clientKey, id string) ([]realmhook.MigrationEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT at, client_key, migration_id, from_state, to_state, detail
		FROM realmhook_migration_events WHERE client_key = ? AND migration_id = ? ORDER BY id`, clientKey, id)
	if err != nil {
		return nil, s.errorf("list migration events %s/%s: %w", clientKey, id, err)
	}
	defer rows.Close()
	var out []realmhook.MigrationEvent
	for rows.Next() {
		var e realmhook.MigrationEvent
		var at int64
		if err := rows.Scan(&at, &e.ClientKey, &e.MigrationID, &e.From, &e.To, &e.Detail); err != nil {
			return nil, s.errorf("list migration events %s/%s: %w", clientKey, id, err)
		}
		e.At = time.UnixMicro(at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("list migration events %s/%s: %w", clientKey, id, err)
	}
	return out, nil
}

// AcquireLease takes or renews the named lease for owner until now+ttl.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration, now time.Time) (bool, error) {
	if name == "" || owner == "" {
		return false, realmhook.Errorf(realmhook.EINVALID, "lease name and owner are required")
	}
	// The upsert's WHERE leaves a valid lease of another owner untouched, so
	// "changed a row" means "holds the lease".
	res, err := s.w.ExecContext(ctx, `INSERT INTO realmhook_leases (name, owner, until) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE realmhook_leases.owner = excluded.owner OR realmhook_leases.until <= ?`,
		name, owner, now.Add(ttl).UnixMicro(), now.UnixMicro())
	if err != nil {
		return false, s.errorf("acquire lease %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.errorf("acquire lease %s: %w", name, err)
	}
	return n == 1, nil
}

// ReleaseLease frees the lease if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM realmhook_leases WHERE name = ? AND owner = ?`, name, owner); err != nil {
		return s.errorf("release lease %s: %w", name, err)
	}
	return nil
}
