package postgres

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/realmhook/realmhook"
)

// GetProperty returns a property's JSON value.
func (s *Store) GetProperty(ctx context.Context, clientKey, key string) ([]byte, error) {
	var v string
	err := s.run(ctx, true, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, "SELECT value FROM realmhook_properties WHERE client_key = $1 AND key = $2", clientKey, key).Scan(&v)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "property %q not found", key)
	} else if err != nil {
		return nil, fmt.Errorf("get property %q of %q: %w", key, clientKey, dataError(err))
	}
	return []byte(v), nil
}

// The write statements below lock the tenant row FOR SHARE and check it in the
// same statement, hence the same transaction, as the write. A freeze (an UPDATE
// of the tenant row) therefore either waits for the write to commit or is seen
// by it, so no write slips past a migration's freeze. One statement also makes
// it one round trip.

const putPropertySQL = `
WITH t AS (
	SELECT state, migration_id FROM realmhook_tenants WHERE client_key = $1 FOR SHARE
), put AS (
	INSERT INTO realmhook_properties (client_key, key, value)
	SELECT $1, $2::text, $3::text FROM t WHERE t.state = 'active' AND t.migration_id = ''
	ON CONFLICT (client_key, key) DO UPDATE SET value = EXCLUDED.value
	RETURNING (xmax = 0) AS created
)
SELECT t.state, t.migration_id, (SELECT created FROM put) FROM t`

const deletePropertySQL = `
WITH t AS (
	SELECT state, migration_id FROM realmhook_tenants WHERE client_key = $1 FOR SHARE
), del AS (
	DELETE FROM realmhook_properties p USING t
	WHERE p.client_key = $1 AND p.key = $2 AND t.state = 'active' AND t.migration_id = ''
	RETURNING 1
)
SELECT t.state, t.migration_id, (SELECT count(*) FROM del) FROM t`

// PutProperty creates or replaces a property and reports whether it was
// created; EMIGRATING if the tenant is frozen, ENOTFOUND if it is not active.
func (s *Store) PutProperty(ctx context.Context, clientKey, key string, value []byte) (bool, error) {
	if err := realmhook.CheckPropertyKey(key); err != nil {
		return false, err
	}
	if err := realmhook.CheckPropertyValue(value); err != nil {
		return false, err
	}
	var state, migrationID string
	var created *bool
	err := s.run(ctx, false, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, putPropertySQL, clientKey, key, string(value)).Scan(&state, &migrationID, &created)
	})
	if err := writeRefusal(clientKey, state, migrationID, err); err != nil {
		return false, fmt.Errorf("put property %q: %w", key, dataError(err))
	}
	return created != nil && *created, nil
}

// DeleteProperty removes a property under the same check as PutProperty;
// ENOTFOUND if it did not exist.
func (s *Store) DeleteProperty(ctx context.Context, clientKey, key string) error {
	var state, migrationID string
	var deleted int64
	err := s.run(ctx, false, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, deletePropertySQL, clientKey, key).Scan(&state, &migrationID, &deleted)
	})
	if err := writeRefusal(clientKey, state, migrationID, err); err != nil {
		return fmt.Errorf("delete property %q: %w", key, dataError(err))
	}
	if deleted == 0 {
		return realmhook.Errorf(realmhook.ENOTFOUND, "property %q not found", key)
	}
	return nil
}

// writeRefusal turns the tenant row a property write saw into the error the
// write must fail with, if any.
func writeRefusal(clientKey, state, migrationID string, err error) error {
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return realmhook.Errorf(realmhook.ENOTFOUND, "tenant %q not found", clientKey)
	case err != nil:
		return dataError(err)
	case state != string(realmhook.TenantActive):
		return realmhook.Errorf(realmhook.ENOTFOUND, "tenant %q is not active here (state %s)", clientKey, state)
	case migrationID != "":
		return realmhook.Errorf(realmhook.EMIGRATING, "tenant %q is migrating (migration %s); writes are frozen", clientKey, migrationID)
	}
	return nil
}

// ListProperties returns up to limit properties whose key starts with prefix
// and sorts after `after`, by key in byte order. The key column is COLLATE
// "C", so a range on it is a byte-order range the primary key index serves;
// no LIKE, whose wildcards a prefix could contain.
func (s *Store) ListProperties(ctx context.Context, clientKey, prefix, after string, limit int) ([]realmhook.Property, error) {
	if limit <= 0 {
		return nil, realmhook.Errorf(realmhook.EINVALID, "limit %d must be positive", limit)
	}
	if err := checkText("prefix", prefix, true); err != nil {
		return nil, err
	}
	if err := checkText("cursor", after, true); err != nil {
		return nil, err
	}
	sql := "SELECT key, value FROM realmhook_properties WHERE client_key = $1 AND key > $2 AND key >= $3"
	args := []any{clientKey, after, prefix}
	if upper, ok := prefixEnd(prefix); ok {
		sql += " AND key < $5"
		args = append(args, limit, upper)
	} else {
		args = append(args, limit)
	}
	sql += " ORDER BY key LIMIT $4"

	var out []realmhook.Property
	err := s.run(ctx, true, func(ctx context.Context) error {
		out = nil
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			out = append(out, realmhook.Property{Key: k, Value: []byte(v)})
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list properties of %q: %w", clientKey, dataError(err))
	}
	return out, nil
}

// prefixEnd returns the least string greater than every string starting with
// prefix, in byte order: prefix with its last code point incremented (UTF-8
// byte order is code point order), dropping trailing U+10FFFF. ok is false
// when there is no such bound (empty prefix, or all U+10FFFF).
func prefixEnd(prefix string) (string, bool) {
	rs := []rune(prefix)
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i] + 1
		if r == 0xD800 { // surrogates are not valid UTF-8; skip over them
			r = 0xE000
		}
		if r <= utf8.MaxRune {
			rs[i] = r
			return string(rs[:i+1]), true
		}
	}
	return "", false
}
