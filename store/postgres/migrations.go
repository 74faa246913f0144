package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

const migrationColumns = `client_key, id, source_realm, target_realm, state, start_time, end_time,
	error_response_code, message, tables_done, tables_total, rows_copied, rows_total,
	checkpoint, created_at, updated_at`

func migrationArgs(m *realmhook.Migration) []any {
	return []any{m.ClientKey, m.ID, m.SourceRealm, m.TargetRealm, string(m.State),
		timeArg(m.StartTime), timeArg(m.EndTime), m.ErrorResponseCode, m.Message,
		int64(m.Progress.TablesDone), int64(m.Progress.TablesTotal), m.Progress.RowsCopied, m.Progress.RowsTotal,
		m.Checkpoint, timeArg(m.CreatedAt), timeArg(m.UpdatedAt)}
}

const insertMigrationSQL = `INSERT INTO realmhook_migrations (` + migrationColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`

const setMigrationSQL = `source_realm = $3, target_realm = $4, state = $5, start_time = $6, end_time = $7,
	error_response_code = $8, message = $9, tables_done = $10, tables_total = $11,
	rows_copied = $12, rows_total = $13, checkpoint = $14, created_at = $15, updated_at = $16`

const insertEventSQL = `INSERT INTO realmhook_migration_events (at, client_key, migration_id, from_state, to_state, detail)
	VALUES ($1, $2, $3, $4, $5, $6)`

func checkMigrationKey(m *realmhook.Migration) error {
	if err := checkText("migration client key", m.ClientKey, false); err != nil {
		return err
	}
	return checkText("migration id", m.ID, false)
}

// CreateMigration inserts a new migration and its first event; ECONFLICT if
// (ClientKey, ID) exists.
func (s *Store) CreateMigration(ctx context.Context, m *realmhook.Migration) error {
	return s.CreateMigrationWithin(ctx, m, store.Limit{})
}

// scheduleLockKey is the pg_advisory_xact_lock key that serialises limited
// migration creates between replicas ("rhsched" in ASCII). Under READ
// COMMITTED each statement sees what committed before it began, so a count
// taken after the lock sees every create that held it before.
const scheduleLockKey int64 = 0x72687363686564

// CreateMigrationWithin inserts m and counts the limited migrations in one
// transaction that holds scheduleLockKey.
func (s *Store) CreateMigrationWithin(ctx context.Context, m *realmhook.Migration, lim store.Limit) error {
	if err := checkMigrationKey(m); err != nil {
		return err
	}
	limited := lim.Max > 0 && len(lim.States) > 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if limited {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", scheduleLockKey); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, insertMigrationSQL+" ON CONFLICT (client_key, id) DO NOTHING", migrationArgs(m)...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return realmhook.Errorf(realmhook.ECONFLICT, "migration %s of tenant %q already exists", m.ID, m.ClientKey)
		}
		if limited {
			var n int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM realmhook_migrations WHERE state = ANY($1)", stateStrings(lim.States)).Scan(&n); err != nil {
				return err
			}
			if n > lim.Max {
				return store.LimitReached(n-1, lim.Max)
			}
		}
		_, err = tx.Exec(ctx, insertEventSQL, s.now().UTC(), m.ClientKey, m.ID, "", string(m.State), "")
		return err
	})
	if err != nil {
		return fmt.Errorf("create migration %s: %w", m.ID, dataError(err))
	}
	return nil
}

func stateStrings(states []realmhook.MigrationState) []string {
	ss := make([]string, len(states))
	for i, st := range states {
		ss[i] = string(st)
	}
	return ss
}

// GetMigration returns one migration.
func (s *Store) GetMigration(ctx context.Context, clientKey, id string) (*realmhook.Migration, error) {
	var m *realmhook.Migration
	err := s.run(ctx, true, func(ctx context.Context) error {
		var err error
		m, err = scanMigration(s.pool.QueryRow(ctx, "SELECT "+migrationColumns+" FROM realmhook_migrations WHERE client_key = $1 AND id = $2", clientKey, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "migration %s of tenant %q not found", id, clientKey)
	} else if err != nil {
		return nil, fmt.Errorf("get migration %s: %w", id, dataError(err))
	}
	return m, nil
}

// UpdateMigration writes m if the stored state is still from (ECONFLICT
// otherwise, ENOTFOUND if there is no such migration), with an event row when
// the state changes, in one transaction.
func (s *Store) UpdateMigration(ctx context.Context, m *realmhook.Migration, from realmhook.MigrationState, detail string, events ...realmhook.Event) error {
	if err := store.CheckEvents(events); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		args := append(migrationArgs(m), string(from))
		tag, err := tx.Exec(ctx, "UPDATE realmhook_migrations SET "+setMigrationSQL+" WHERE client_key = $1 AND id = $2 AND state = $17", args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var state string
			err := tx.QueryRow(ctx, "SELECT state FROM realmhook_migrations WHERE client_key = $1 AND id = $2", m.ClientKey, m.ID).Scan(&state)
			if errors.Is(err, pgx.ErrNoRows) {
				return realmhook.Errorf(realmhook.ENOTFOUND, "migration %s of tenant %q not found", m.ID, m.ClientKey)
			} else if err != nil {
				return err
			}
			return realmhook.Errorf(realmhook.ECONFLICT, "migration %s is %s, not %s", m.ID, state, from)
		}
		if m.State != from {
			if _, err := tx.Exec(ctx, insertEventSQL, s.now().UTC(), m.ClientKey, m.ID, string(from), string(m.State), detail); err != nil {
				return err
			}
		}
		return insertEvents(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("update migration %s: %w", m.ID, dataError(err))
	}
	return nil
}

// PutMigration inserts or replaces a migration record without an event.
func (s *Store) PutMigration(ctx context.Context, m *realmhook.Migration) error {
	if err := checkMigrationKey(m); err != nil {
		return err
	}
	err := s.run(ctx, true, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, insertMigrationSQL+" ON CONFLICT (client_key, id) DO UPDATE SET "+setMigrationSQL, migrationArgs(m)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("put migration %s: %w", m.ID, dataError(err))
	}
	return nil
}

// ListMigrations returns migrations in any of the given states (all when none
// are given), oldest first.
func (s *Store) ListMigrations(ctx context.Context, states ...realmhook.MigrationState) ([]*realmhook.Migration, error) {
	sql := "SELECT " + migrationColumns + " FROM realmhook_migrations"
	var args []any
	if len(states) > 0 {
		sql += " WHERE state = ANY($1)"
		args = append(args, stateStrings(states))
	}
	sql += " ORDER BY created_at NULLS FIRST, client_key, id"
	var out []*realmhook.Migration
	err := s.run(ctx, true, func(ctx context.Context) error {
		out = nil
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMigration(rows)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", dataError(err))
	}
	return out, nil
}

// ListMigrationEvents returns a migration's events, oldest first.
func (s *Store) ListMigrationEvents(ctx context.Context, clientKey, id string) ([]realmhook.MigrationEvent, error) {
	var out []realmhook.MigrationEvent
	err := s.run(ctx, true, func(ctx context.Context) error {
		out = nil
		rows, err := s.pool.Query(ctx, `SELECT at, client_key, migration_id, from_state, to_state, detail
			FROM realmhook_migration_events WHERE client_key = $1 AND migration_id = $2 ORDER BY id`, clientKey, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e realmhook.MigrationEvent
			var at pgtype.Timestamptz
			var from, to string
			if err := rows.Scan(&at, &e.ClientKey, &e.MigrationID, &from, &to, &e.Detail); err != nil {
				return err
			}
			e.At, e.From, e.To = timeOf(at), realmhook.MigrationState(from), realmhook.MigrationState(to)
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list events of migration %s: %w", id, dataError(err))
	}
	return out, nil
}

func scanMigration(row pgx.Row) (*realmhook.Migration, error) {
	var m realmhook.Migration
	var state string
	var start, end, created, updated pgtype.Timestamptz
	var tablesDone, tablesTotal int64
	err := row.Scan(&m.ClientKey, &m.ID, &m.SourceRealm, &m.TargetRealm, &state, &start, &end,
		&m.ErrorResponseCode, &m.Message, &tablesDone, &tablesTotal, &m.Progress.RowsCopied, &m.Progress.RowsTotal,
		&m.Checkpoint, &created, &updated)
	if err != nil {
		return nil, err
	}
	m.State = realmhook.MigrationState(state)
	m.Progress.TablesDone, m.Progress.TablesTotal = int(tablesDone), int(tablesTotal)
	m.StartTime, m.EndTime, m.CreatedAt, m.UpdatedAt = timeOf(start), timeOf(end), timeOf(created), timeOf(updated)
	return &m, nil
}
