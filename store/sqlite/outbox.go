package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

const outboxColumns = `seq, id, type, client_key, realm, product_base_url, migration_id, from_realm, to_realm,
	at, attempts, not_before, last_error`

// insertEvents writes events to the outbox within the caller's transaction.
// SQLite has one writer at a time, so seq order is commit order.
func insertEvents(ctx context.Context, tx execer, events []realmhook.Event) error {
	for _, e := range events {
		if _, err := tx.ExecContext(ctx, `INSERT INTO realmhook_outbox
			(id, type, client_key, realm, product_base_url, migration_id, from_realm, to_realm, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, string(e.Type), e.ClientKey, e.Realm, e.ProductBaseURL, e.MigrationID, e.From, e.To, microsOrNull(e.At)); err != nil {
			return err
		}
	}
	return nil
}

// NextEvents returns the oldest due event of each tenant, in seq order.
func (s *Store) NextEvents(ctx context.Context, now time.Time, limit int) ([]store.QueuedEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+outboxColumns+` FROM realmhook_outbox
		WHERE seq IN (SELECT min(seq) FROM realmhook_outbox GROUP BY client_key)
		AND (not_before IS NULL OR not_before <= ?)
		ORDER BY seq LIMIT ?`, now.UnixMicro(), limit)
	if err != nil {
		return nil, s.errorf("next events: %w", err)
	}
	defer rows.Close()
	var out []store.QueuedEvent
	for rows.Next() {
		var q store.QueuedEvent
		var at, notBefore sql.NullInt64
		if err := rows.Scan(&q.Seq, &q.ID, &q.Type, &q.ClientKey, &q.Realm, &q.ProductBaseURL, &q.MigrationID,
			&q.From, &q.To, &at, &q.Attempts, &notBefore, &q.LastError); err != nil {
			return nil, s.errorf("next events: %w", err)
		}
		q.At, q.NotBefore = timeFromMicros(at), timeFromMicros(notBefore)
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("next events: %w", err)
	}
	return out, nil
}

// DeleteEvent removes a delivered event.
func (s *Store) DeleteEvent(ctx context.Context, seq int64) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM realmhook_outbox WHERE seq = ?`, seq); err != nil {
		return s.errorf("delete event %d: %w", seq, err)
	}
	return nil
}

// DeferEvent records a failed delivery.
func (s *Store) DeferEvent(ctx context.Context, seq int64, notBefore time.Time, reason string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE realmhook_outbox SET attempts = attempts + 1, not_before = ?, last_error = ?
		WHERE seq = ?`, microsOrNull(notBefore), reason, seq); err != nil {
		return s.errorf("defer event %d: %w", seq, err)
	}
	return nil
}

// CountEvents counts the outbox's events by type.
func (s *Store) CountEvents(ctx context.Context) (map[realmhook.EventType]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT type, count(*) FROM realmhook_outbox GROUP BY type`)
	if err != nil {
		return nil, s.errorf("count events: %w", err)
	}
	defer rows.Close()
	out := map[realmhook.EventType]int64{}
	for rows.Next() {
		var typ string
		var n int64
		if err := rows.Scan(&typ, &n); err != nil {
			return nil, s.errorf("count events: %w", err)
		}
		out[realmhook.EventType(typ)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("count events: %w", err)
	}
	return out, nil
}
