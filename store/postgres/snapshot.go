package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/realmhook/realmhook/store"
)

// querier is what reads run on: the pool, or a snapshot's transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// reads says where a read runs and how: on the pool, retried as s.run
// retries; or once on a snapshot's transaction, where a retry on another
// connection would see another state.
type reads struct {
	q   querier
	run func(ctx context.Context, fn func(context.Context) error) error
}

func (s *Store) onPool() reads {
	return reads{q: s.pool, run: func(ctx context.Context, fn func(context.Context) error) error { return s.run(ctx, true, fn) }}
}

// snapshot reads through one REPEATABLE READ, READ ONLY transaction: every
// statement in it sees the snapshot its first statement took.
type snapshot struct {
	s  *Store
	mu sync.Mutex // a pgx.Tx serves one statement at a time
	tx pgx.Tx
}

// Snapshot begins the transaction and takes its snapshot at once.
func (s *Store) Snapshot(ctx context.Context) (store.Snapshot, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", dataError(err))
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		_ = tx.Rollback(context.Background())
		return nil, fmt.Errorf("snapshot: %w", dataError(err))
	}
	return &snapshot{s: s, tx: tx}, nil
}

func (p *snapshot) reads() reads {
	return reads{q: p.tx, run: func(ctx context.Context, fn func(context.Context) error) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		return fn(ctx)
	}}
}

func (p *snapshot) Backend() string { return p.s.Backend() }

func (p *snapshot) Columns(ctx context.Context, table string) ([]string, error) {
	return p.s.Columns(ctx, table)
}

func (p *snapshot) ColumnTypes(ctx context.Context, table string) ([]string, error) {
	return p.s.ColumnTypes(ctx, table)
}

func (p *snapshot) ReadRows(ctx context.Context, t store.Table, columns []string, clientKey string, after store.Row, limit int) ([]store.Row, error) {
	return p.s.readRows(ctx, p.reads(), t, columns, clientKey, after, limit)
}

func (p *snapshot) ScanRows(ctx context.Context, t store.Table, columns []string, clientKey string, fn func(store.Row) error) error {
	return p.s.scanRows(ctx, p.reads(), t, columns, clientKey, fn)
}

func (p *snapshot) CountRows(ctx context.Context, t store.Table, clientKey string) (int64, error) {
	return p.s.countRows(ctx, p.reads(), t, clientKey)
}

func (p *snapshot) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.tx.Rollback(context.Background()); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("end snapshot: %w", err)
	}
	return nil
}
