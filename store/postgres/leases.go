package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AcquireLease takes or renews the named lease for owner until now+ttl. One
// upsert decides it, so two replicas racing for a free or expired lease cannot
// both win: the loser's conflicting row fails the WHERE and returns nothing.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration, now time.Time) (bool, error) {
	if err := checkText("lease name", name, false); err != nil {
		return false, err
	}
	if err := checkText("lease owner", owner, false); err != nil {
		return false, err
	}
	var got string
	// Idempotent: a retry after a lost reply finds the lease already owner's.
	err := s.run(ctx, true, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `INSERT INTO realmhook_leases (name, owner, until) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until
			WHERE realmhook_leases.owner = EXCLUDED.owner OR realmhook_leases.until < $4
			RETURNING owner`, name, owner, now.Add(ttl), now).Scan(&got)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, dataError(err))
	}
	return true, nil
}

// ReleaseLease frees the lease if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	err := s.run(ctx, true, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, "DELETE FROM realmhook_leases WHERE name = $1 AND owner = $2", name, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, dataError(err))
	}
	return nil
}
