package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

const tenantColumns = `client_key, shared_secret, base_url, display_url, product_type, description,
	service_entitlement_number, installation_id, oauth_client_id, plugins_version, app_key,
	state, enabled, migration_id, moved_to, purge_after, installed_at, updated_at, cloud_id`

type scanner interface{ Scan(dest ...any) error }

func scanTenant(row scanner) (*realmhook.Tenant, error) {
	var t realmhook.Tenant
	var purgeAfter, installedAt, updatedAt sql.NullInt64
	if err := row.Scan(&t.ClientKey, &t.SharedSecret, &t.BaseURL, &t.DisplayURL, &t.ProductType, &t.Description,
		&t.ServiceEntitlementNumber, &t.InstallationID, &t.OAuthClientID, &t.PluginsVersion, &t.AppKey,
		&t.State, &t.Enabled, &t.MigrationID, &t.MovedTo, &purgeAfter, &installedAt, &updatedAt, &t.CloudID); err != nil {
		return nil, err
	}
	t.PurgeAfter = timeFromMicros(purgeAfter)
	t.InstalledAt = timeFromMicros(installedAt)
	t.UpdatedAt = timeFromMicros(updatedAt)
	return &t, nil
}

// GetTenant returns the tenant record, whatever its state.
func (s *Store) GetTenant(ctx context.Context, clientKey string) (*realmhook.Tenant, error) {
	t, err := scanTenant(s.prep.getTenant.QueryRowContext(ctx, clientKey))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "tenant %q not found", clientKey)
	} else if err != nil {
		return nil, s.errorf("get tenant %s: %w", clientKey, err)
	}
	return t, nil
}

// PutTenant inserts or replaces the whole tenant record.
func (s *Store) PutTenant(ctx context.Context, t *realmhook.Tenant, events ...realmhook.Event) error {
	if t == nil || t.ClientKey == "" {
		return realmhook.Errorf(realmhook.EINVALID, "tenant clientKey is required")
	}
	if err := store.CheckEvents(events); err != nil {
		return err
	}
	var err error
	if len(events) == 0 {
		err = putTenant(ctx, s.w, t)
	} else {
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if err := putTenant(ctx, tx, t); err != nil {
				return err
			}
			return insertEvents(ctx, tx, events)
		})
	}
	if err != nil {
		return s.errorf("put tenant %s: %w", t.ClientKey, err)
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func putTenant(ctx context.Context, db execer, t *realmhook.Tenant) error {
	_, err := db.ExecContext(ctx, `INSERT OR REPLACE INTO realmhook_tenants (`+tenantColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ClientKey, t.SharedSecret, t.BaseURL, t.DisplayURL, t.ProductType, t.Description,
		t.ServiceEntitlementNumber, t.InstallationID, t.OAuthClientID, t.PluginsVersion, t.AppKey,
		string(t.State), t.Enabled, t.MigrationID, t.MovedTo,
		microsOrNull(t.PurgeAfter), microsOrNull(t.InstalledAt), microsOrNull(t.UpdatedAt), t.CloudID)
	return err
}

// UpdateTenant is a read-modify-write in one immediate transaction: SQLite
// takes the write lock at BEGIN, so no other writer runs in between.
func (s *Store) UpdateTenant(ctx context.Context, clientKey string, change func(*realmhook.Tenant) error, events ...realmhook.Event) (*realmhook.Tenant, error) {
	if err := store.CheckEvents(events); err != nil {
		return nil, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.errorf("update tenant %s: %w", clientKey, err)
	}
	defer func() { _ = tx.Rollback() }()
	t, err := scanTenant(tx.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM realmhook_tenants WHERE client_key = ?`, clientKey))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "tenant %q not found", clientKey)
	} else if err != nil {
		return nil, s.errorf("update tenant %s: %w", clientKey, err)
	}
	from := t.State
	if err := change(t); err != nil {
		return nil, err
	}
	if t.ClientKey != clientKey {
		return nil, realmhook.Errorf(realmhook.EINVALID, "update tenant %s: the client key cannot change", clientKey)
	}
	if err := realmhook.CheckTenantTransition(from, t.State); err != nil {
		return nil, fmt.Errorf("update tenant %s: %w", clientKey, err)
	}
	if err := putTenant(ctx, tx, t); err != nil {
		return nil, s.errorf("update tenant %s: %w", clientKey, err)
	}
	if err := insertEvents(ctx, tx, events); err != nil {
		return nil, s.errorf("update tenant %s: outbox: %w", clientKey, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, s.errorf("update tenant %s: commit: %w", clientKey, err)
	}
	return t, nil
}

// DeleteTenant removes the tenant record only; no error if absent.
func (s *Store) DeleteTenant(ctx context.Context, clientKey string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM realmhook_tenants WHERE client_key = ?`, clientKey); err != nil {
		return s.errorf("delete tenant %s: %w", clientKey, err)
	}
	return nil
}

// ListTenants returns tenants in the given state, by clientKey.
func (s *Store) ListTenants(ctx context.Context, state realmhook.TenantState) ([]*realmhook.Tenant, error) {
	return s.queryTenants(ctx, "list tenants "+string(state),
		`SELECT `+tenantColumns+` FROM realmhook_tenants WHERE state = ? ORDER BY client_key`, string(state))
}

// PageTenants returns up to limit tenants after `after`, by clientKey, in
// state (any state for realmhook.TenantNone).
func (s *Store) PageTenants(ctx context.Context, state realmhook.TenantState, after string, limit int) ([]*realmhook.Tenant, error) {
	return s.queryTenants(ctx, "page tenants "+string(state), `SELECT `+tenantColumns+` FROM realmhook_tenants
		WHERE client_key > ? AND (? = '' OR state = ?) ORDER BY client_key LIMIT ?`,
		after, string(state), string(state), limit)
}

// queryTenants runs a query of tenantColumns; what names it in errors.
func (s *Store) queryTenants(ctx context.Context, what, query string, args ...any) ([]*realmhook.Tenant, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []*realmhook.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, s.errorf("%s: %w", what, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("%s: %w", what, err)
	}
	return out, nil
}

// CountTenants returns the number of tenant records in each state.
func (s *Store) CountTenants(ctx context.Context) (map[realmhook.TenantState]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT state, count(*) FROM realmhook_tenants GROUP BY state`)
	if err != nil {
		return nil, s.errorf("count tenants: %w", err)
	}
	defer rows.Close()
	out := map[realmhook.TenantState]int64{}
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return nil, s.errorf("count tenants: %w", err)
		}
		out[realmhook.TenantState(state)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("count tenants: %w", err)
	}
	return out, nil
}

// checkWritable is PutProperty's and DeleteProperty's guard, run inside their
// write transaction so that a freeze committed before it cannot be missed.
func (s *Store) checkWritable(ctx context.Context, tx *sql.Tx, clientKey string) error {
	var state, migrationID string
	err := tx.StmtContext(ctx, s.prep.checkWritable).QueryRowContext(ctx, clientKey).Scan(&state, &migrationID)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && realmhook.TenantState(state) != realmhook.TenantActive) {
		return realmhook.Errorf(realmhook.ENOTFOUND, "no active tenant %q in this realm", clientKey)
	} else if err != nil {
		return fmt.Errorf("check tenant %s: %w", clientKey, err)
	}
	if migrationID != "" {
		return realmhook.Errorf(realmhook.EMIGRATING, "tenant %q is read-only while migration %s runs", clientKey, migrationID).
			With("migrationId", migrationID)
	}
	return nil
}

// TenantChanges reads the change sequence the realmhook_tenants triggers keep.
func (s *Store) TenantChanges(ctx context.Context, after int64) (int64, []string, bool, error) {
	var seq int64
	if err := s.prep.tenantSeq.QueryRowContext(ctx).Scan(&seq); err != nil {
		return 0, nil, false, fmt.Errorf("tenant changes: %w", err)
	}
	if seq == after {
		return seq, nil, true, nil
	}
	if seq < after {
		// The database was replaced or restored under us.
		return seq, nil, false, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, client_key FROM realmhook_tenant_changes WHERE seq > ? AND seq <= ? ORDER BY seq`, after, seq)
	if err != nil {
		return 0, nil, false, fmt.Errorf("tenant changes: %w", err)
	}
	defer rows.Close()
	var keys []string
	first := int64(-1)
	for rows.Next() {
		var n int64
		var key string
		if err := rows.Scan(&n, &key); err != nil {
			return 0, nil, false, fmt.Errorf("tenant changes: %w", err)
		}
		if first < 0 {
			first = n
		}
		keys = append(keys, key)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, false, fmt.Errorf("tenant changes: %w", err)
	}
	return seq, keys, first == after+1, nil
}

// FindTenants returns the client keys of the records of any of the
// installations or of the cloud id, by clientKey.
func (s *Store) FindTenants(ctx context.Context, installationIDs []string, cloudID string) ([]string, error) {
	ids, err := json.Marshal(nonEmpty(installationIDs))
	if err != nil {
		return nil, fmt.Errorf("find tenants: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT client_key FROM realmhook_tenants
		WHERE (installation_id <> '' AND installation_id IN (SELECT value FROM json_each(?)))
		   OR (cloud_id <> '' AND cloud_id = ?)
		ORDER BY client_key`, string(ids), cloudID)
	if err != nil {
		return nil, s.errorf("find tenants: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, s.errorf("find tenants: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("find tenants: %w", err)
	}
	return out, nil
}

func nonEmpty(list []string) []string {
	out := make([]string, 0, len(list))
	for _, v := range list {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
