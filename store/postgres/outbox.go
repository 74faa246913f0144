package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

const outboxColumns = `seq, id, type, client_key, realm, product_base_url, migration_id, from_realm, to_realm,
	at, attempts, not_before, last_error`

// outboxLockClass is the first key of the two-key advisory lock that
// serialises the outbox writes of one tenant (the second is a hash of its
// client key); the two-key space never meets schemaLockKey's one-key space.
const outboxLockClass = 0x72686f62 // "rhob"

// insertEvents writes events to the outbox within the caller's transaction.
// An identity value is taken when the row is inserted, not when it commits,
// so two transactions writing one tenant's events could commit in the other
// order than their seq; the advisory lock, held to commit, rules that out.
// It is taken last in every transaction that writes events, after any row
// lock, so it never waits in a cycle.
func insertEvents(ctx context.Context, tx pgx.Tx, events []realmhook.Event) error {
	locked := map[string]bool{}
	for _, e := range events {
		for what, v := range map[string]string{"event id": e.ID, "event type": string(e.Type), "event client key": e.ClientKey,
			"event realm": e.Realm, "event product base URL": e.ProductBaseURL, "event migration id": e.MigrationID,
			"event source realm": e.From, "event target realm": e.To} {
			if err := checkText(what, v, true); err != nil {
				return err
			}
		}
		if !locked[e.ClientKey] {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", outboxLockClass, e.ClientKey); err != nil {
				return fmt.Errorf("lock outbox of %q: %w", e.ClientKey, err)
			}
			locked[e.ClientKey] = true
		}
		if _, err := tx.Exec(ctx, `INSERT INTO realmhook_outbox
			(id, type, client_key, realm, product_base_url, migration_id, from_realm, to_realm, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			e.ID, string(e.Type), e.ClientKey, e.Realm, e.ProductBaseURL, e.MigrationID, e.From, e.To, timeArg(e.At)); err != nil {
			return err
		}
	}
	return nil
}

// NextEvents returns the oldest due event of each tenant, in seq order.
func (s *Store) NextEvents(ctx context.Context, now time.Time, limit int) ([]store.QueuedEvent, error) {
	var out []store.QueuedEvent
	err := s.run(ctx, true, func(ctx context.Context) error {
		out = nil
		rows, err := s.pool.Query(ctx, `SELECT `+outboxColumns+` FROM realmhook_outbox
			WHERE seq IN (SELECT min(seq) FROM realmhook_outbox GROUP BY client_key)
			AND (not_before IS NULL OR not_before <= $1)
			ORDER BY seq LIMIT $2`, now, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var q store.QueuedEvent
			var typ string
			var at, notBefore pgtype.Timestamptz
			if err := rows.Scan(&q.Seq, &q.ID, &typ, &q.ClientKey, &q.Realm, &q.ProductBaseURL, &q.MigrationID,
				&q.From, &q.To, &at, &q.Attempts, &notBefore, &q.LastError); err != nil {
				return err
			}
			q.Type = realmhook.EventType(typ)
			q.At, q.NotBefore = timeOf(at), timeOf(notBefore)
			out = append(out, q)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("next events: %w", dataError(err))
	}
	return out, nil
}

// DeleteEvent removes a delivered event.
func (s *Store) DeleteEvent(ctx context.Context, seq int64) error {
	err := s.run(ctx, true, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, "DELETE FROM realmhook_outbox WHERE seq = $1", seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete event %d: %w", seq, dataError(err))
	}
	return nil
}

// DeferEvent records a failed delivery. Not idempotent (it counts), so a
// lost connection is not retried: the next failure counts instead.
func (s *Store) DeferEvent(ctx context.Context, seq int64, notBefore time.Time, reason string) error {
	if err := checkText("reason", reason, true); err != nil {
		return err
	}
	err := s.run(ctx, false, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, "UPDATE realmhook_outbox SET attempts = attempts + 1, not_before = $2, last_error = $3 WHERE seq = $1",
			seq, timeArg(notBefore), reason)
		return err
	})
	if err != nil {
		return fmt.Errorf("defer event %d: %w", seq, dataError(err))
	}
	return nil
}

// CountEvents counts the outbox's events by type.
func (s *Store) CountEvents(ctx context.Context) (map[realmhook.EventType]int64, error) {
	var out map[realmhook.EventType]int64
	err := s.run(ctx, true, func(ctx context.Context) error {
		out = map[realmhook.EventType]int64{}
		rows, err := s.pool.Query(ctx, "SELECT type, count(*) FROM realmhook_outbox GROUP BY type")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var typ string
			var n int64
			if err := rows.Scan(&typ, &n); err != nil {
				return err
			}
			out[realmhook.EventType(typ)] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("count events: %w", dataError(err))
	}
	return out, nil
}
