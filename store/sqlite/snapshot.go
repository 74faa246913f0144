package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/realmhook/realmhook/store"
)

// snapshot reads through one read transaction: in WAL mode SQLite keeps a
// reader on the database as it was at the transaction's first read, so
// every read after it sees the same state.
type snapshot struct {
	s  *Store
	tx *sql.Tx
}

// Snapshot opens a read transaction on the read pool and pins its
// snapshot at once with a first read.
func (s *Store) Snapshot(ctx context.Context) (store.Snapshot, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.errorf("snapshot: %w", unavailable(err))
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		_ = tx.Rollback()
		return nil, s.errorf("snapshot: %w", unavailable(err))
	}
	return &snapshot{s: s, tx: tx}, nil
}

func (p *snapshot) Backend() string { return p.s.Backend() }

func (p *snapshot) Columns(ctx context.Context, table string) ([]string, error) {
	return p.s.Columns(ctx, table)
}

func (p *snapshot) ColumnTypes(ctx context.Context, table string) ([]string, error) {
	return p.s.ColumnTypes(ctx, table)
}

func (p *snapshot) ReadRows(ctx context.Context, t store.Table, columns []string, clientKey string, after store.Row, limit int) ([]store.Row, error) {
	return p.s.readRows(ctx, p.tx, t, columns, clientKey, after, limit)
}

func (p *snapshot) ScanRows(ctx context.Context, t store.Table, columns []string, clientKey string, fn func(store.Row) error) error {
	return p.s.scanRows(ctx, p.tx, t, columns, clientKey, fn)
}

func (p *snapshot) CountRows(ctx context.Context, t store.Table, clientKey string) (int64, error) {
	return p.s.countRows(ctx, p.tx, t, clientKey)
}

func (p *snapshot) Close() error {
	if err := p.tx.Rollback(); err != nil && err != sql.ErrTxDone {
		return fmt.Errorf("end snapshot: %w", err)
	}
	return nil
}
