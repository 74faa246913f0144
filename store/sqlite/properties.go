package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/realmhook/realmhook"
)

// GetProperty returns a property's JSON value.
func (s *Store) GetProperty(ctx context.Context, clientKey, key string) ([]byte, error) {
	var v []byte
	err := s.prep.getProperty.QueryRowContext(ctx, clientKey, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "property %q not found", key)
	} else if err != nil {
		return nil, s.errorf("get property %s/%s: %w", clientKey, key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// PutProperty creates or replaces a property if the tenant is active and not
// frozen, and reports whether it was created.
func (s *Store) PutProperty(ctx context.Context, clientKey, key string, value []byte) (created bool, err error) {
	// SQLite would hold what PostgreSQL cannot; the shared rule keeps every
	// realm's data migratable to every other.
	if err := realmhook.CheckPropertyKey(key); err != nil {
		return false, err
	}
	if err := realmhook.CheckPropertyValue(value); err != nil {
		return false, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkWritable(ctx, tx, clientKey); err != nil {
			return err
		}
		// The value is bound as a string so it is stored as TEXT, the type the
		// copy primitives read back as on every backend.
		res, err := tx.StmtContext(ctx, s.prep.insertProperty).ExecContext(ctx, clientKey, key, string(value))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			created = true
			return nil
		}
		_, err = tx.StmtContext(ctx, s.prep.updateProperty).ExecContext(ctx, string(value), clientKey, key)
		return err
	})
	if err != nil {
		return false, s.errorf("put property %s/%s: %w", clientKey, key, err)
	}
	return created, nil
}

// DeleteProperty removes a property under the same check as PutProperty.
func (s *Store) DeleteProperty(ctx context.Context, clientKey, key string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkWritable(ctx, tx, clientKey); err != nil {
			return err
		}
		res, err := tx.StmtContext(ctx, s.prep.deleteProperty).ExecContext(ctx, clientKey, key)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return realmhook.Errorf(realmhook.ENOTFOUND, "property %q not found", key)
		}
		return nil
	})
	if err != nil {
		return s.errorf("delete property %s/%s: %w", clientKey, key, err)
	}
	return nil
}

// ListProperties returns up to limit properties whose key starts with prefix
// and sorts after `after`, by key in byte order. limit <= 0 means no limit.
func (s *Store) ListProperties(ctx context.Context, clientKey, prefix, after string, limit int) ([]realmhook.Property, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	// A range on the primary key instead of LIKE: LIKE would treat % and _ as
	// wildcards and fold ASCII case. SQLite's default BINARY collation compares
	// bytes, which is the order the API promises.
	q := `SELECT key, value FROM realmhook_properties WHERE client_key = ? AND key >= ? AND key > ?`
	args := []any{clientKey, prefix, after}
	if upper, ok := prefixSuccessor(prefix); ok {
		q += ` AND key < ?`
		args = append(args, upper)
	}
	q += ` ORDER BY key LIMIT ?`
	args = append(args, limit)

	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.errorf("list properties %s: %w", clientKey, err)
	}
	defer rows.Close()
	var out []realmhook.Property
	for rows.Next() {
		var p realmhook.Property
		if err := rows.Scan(&p.Key, &p.Value); err != nil {
			return nil, s.errorf("list properties %s: %w", clientKey, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("list properties %s: %w", clientKey, err)
	}
	return out, nil
}

// prefixSuccessor returns the smallest string greater than every string that
// starts with prefix, comparing bytes; ok is false when there is none (an
// empty prefix, or one of only 0xff bytes).
func prefixSuccessor(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}
