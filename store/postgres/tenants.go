package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

const tenantColumns = `client_key, shared_secret, base_url, display_url, product_type, description,
	service_entitlement_number, installation_id, oauth_client_id, plugins_version, app_key,
	state, enabled, migration_id, moved_to, purge_after, installed_at, updated_at, cloud_id`

// GetTenant returns the tenant record, whatever its state.
func (s *Store) GetTenant(ctx context.Context, clientKey string) (*realmhook.Tenant, error) {
	var t *realmhook.Tenant
	err := s.run(ctx, true, func(ctx context.Context) error {
		var err error
		t, err = scanTenant(s.pool.QueryRow(ctx, "SELECT "+tenantColumns+" FROM realmhook_tenants WHERE client_key = $1", clientKey))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "tenant %q not found", clientKey)
	} else if err != nil {
		return nil, fmt.Errorf("get tenant %q: %w", clientKey, dataError(err))
	}
	return t, nil
}

// PutTenant inserts or replaces the whole tenant record.
func (s *Store) PutTenant(ctx context.Context, t *realmhook.Tenant, events ...realmhook.Event) error {
	if err := checkText("client key", t.ClientKey, false); err != nil {
		return err
	}
	if err := store.CheckEvents(events); err != nil {
		return err
	}
	var err error
	if len(events) == 0 {
		err = s.run(ctx, true, func(ctx context.Context) error {
			_, err := s.pool.Exec(ctx, putTenantSQL, tenantArgs(t)...)
			return err
		})
	} else {
		err = s.inTx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, putTenantSQL, tenantArgs(t)...); err != nil {
				return err
			}
			return insertEvents(ctx, tx, events)
		})
	}
	if err != nil {
		return fmt.Errorf("put tenant %q: %w", t.ClientKey, dataError(err))
	}
	return nil
}

const putTenantSQL = `INSERT INTO realmhook_tenants (` + tenantColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
	ON CONFLICT (client_key) DO UPDATE SET
		shared_secret = EXCLUDED.shared_secret, base_url = EXCLUDED.base_url,
		display_url = EXCLUDED.display_url, product_type = EXCLUDED.product_type,
		description = EXCLUDED.description, service_entitlement_number = EXCLUDED.service_entitlement_number,
		installation_id = EXCLUDED.installation_id, oauth_client_id = EXCLUDED.oauth_client_id,
		plugins_version = EXCLUDED.plugins_version, app_key = EXCLUDED.app_key,
		state = EXCLUDED.state, enabled = EXCLUDED.enabled, migration_id = EXCLUDED.migration_id,
		moved_to = EXCLUDED.moved_to, purge_after = EXCLUDED.purge_after,
		installed_at = EXCLUDED.installed_at, updated_at = EXCLUDED.updated_at, cloud_id = EXCLUDED.cloud_id`

func tenantArgs(t *realmhook.Tenant) []any {
	return []any{t.ClientKey, t.SharedSecret, t.BaseURL, t.DisplayURL, t.ProductType, t.Description,
		t.ServiceEntitlementNumber, t.InstallationID, t.OAuthClientID, t.PluginsVersion, t.AppKey,
		string(t.State), t.Enabled, t.MigrationID, t.MovedTo,
		timeArg(t.PurgeAfter), timeArg(t.InstalledAt), timeArg(t.UpdatedAt), t.CloudID}
}

// UpdateTenant is a read-modify-write under the tenant row's lock (SELECT …
// FOR UPDATE), the same lock a property write takes FOR SHARE, so a freeze
// and a concurrent write or lifecycle change are serialised.
func (s *Store) UpdateTenant(ctx context.Context, clientKey string, change func(*realmhook.Tenant) error, events ...realmhook.Event) (*realmhook.Tenant, error) {
	if err := store.CheckEvents(events); err != nil {
		return nil, err
	}
	var out *realmhook.Tenant
	var changeErr error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		t, err := scanTenant(tx.QueryRow(ctx, "SELECT "+tenantColumns+" FROM realmhook_tenants WHERE client_key = $1 FOR UPDATE", clientKey))
		if err != nil {
			return err
		}
		from := t.State
		if changeErr = change(t); changeErr != nil {
			return changeErr
		}
		if t.ClientKey != clientKey {
			changeErr = realmhook.Errorf(realmhook.EINVALID, "update tenant %q: the client key cannot change", clientKey)
			return changeErr
		}
		if err := realmhook.CheckTenantTransition(from, t.State); err != nil {
			changeErr = fmt.Errorf("update tenant %q: %w", clientKey, err)
			return changeErr
		}
		if _, err := tx.Exec(ctx, putTenantSQL, tenantArgs(t)...); err != nil {
			return err
		}
		if err := insertEvents(ctx, tx, events); err != nil {
			return err
		}
		out = t
		return nil
	})
	switch {
	case changeErr != nil:
		return nil, changeErr
	case errors.Is(err, pgx.ErrNoRows):
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "tenant %q not found", clientKey)
	case err != nil:
		return nil, fmt.Errorf("update tenant %q: %w", clientKey, dataError(err))
	}
	return out, nil
}

// DeleteTenant removes the tenant record only; no error if absent.
func (s *Store) DeleteTenant(ctx context.Context, clientKey string) error {
	err := s.run(ctx, true, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, "DELETE FROM realmhook_tenants WHERE client_key = $1", clientKey)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete tenant %q: %w", clientKey, dataError(err))
	}
	return nil
}

// ListTenants returns tenants in the given state, by clientKey in byte order.
func (s *Store) ListTenants(ctx context.Context, state realmhook.TenantState) ([]*realmhook.Tenant, error) {
	return s.queryTenants(ctx, fmt.Sprintf("list %s tenants", state),
		"SELECT "+tenantColumns+" FROM realmhook_tenants WHERE state = $1 ORDER BY client_key", string(state))
}

// PageTenants returns up to limit tenants after `after`, by clientKey, in
// state (any state for realmhook.TenantNone).
func (s *Store) PageTenants(ctx context.Context, state realmhook.TenantState, after string, limit int) ([]*realmhook.Tenant, error) {
	return s.queryTenants(ctx, fmt.Sprintf("page %s tenants", state), "SELECT "+tenantColumns+` FROM realmhook_tenants
		WHERE client_key > $1 AND ($2 = '' OR state = $2) ORDER BY client_key LIMIT $3`,
		after, string(state), limit)
}

// queryTenants runs a read-only query of tenantColumns; what names it in
// errors.
func (s *Store) queryTenants(ctx context.Context, what, query string, args ...any) ([]*realmhook.Tenant, error) {
	var out []*realmhook.Tenant
	err := s.run(ctx, true, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*realmhook.Tenant, error) { return scanTenant(row) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, dataError(err))
	}
	return out, nil
}

// CountTenants returns the number of tenant records in each state.
func (s *Store) CountTenants(ctx context.Context) (map[realmhook.TenantState]int64, error) {
	var out map[realmhook.TenantState]int64
	err := s.run(ctx, true, func(ctx context.Context) error {
		out = map[realmhook.TenantState]int64{}
		rows, err := s.pool.Query(ctx, "SELECT state, count(*) FROM realmhook_tenants GROUP BY state")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var state string
			var n int64
			if err := rows.Scan(&state, &n); err != nil {
				return err
			}
			out[realmhook.TenantState(state)] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("count tenants: %w", dataError(err))
	}
	return out, nil
}

func scanTenant(row pgx.Row) (*realmhook.Tenant, error) {
	var t realmhook.Tenant
	var state string
	var purgeAfter, installedAt, updatedAt pgtype.Timestamptz
	err := row.Scan(&t.ClientKey, &t.SharedSecret, &t.BaseURL, &t.DisplayURL, &t.ProductType, &t.Description,
		&t.ServiceEntitlementNumber, &t.InstallationID, &t.OAuthClientID, &t.PluginsVersion, &t.AppKey,
		&state, &t.Enabled, &t.MigrationID, &t.MovedTo, &purgeAfter, &installedAt, &updatedAt, &t.CloudID)
	if err != nil {
		return nil, err
	}
	t.State = realmhook.TenantState(state)
	t.PurgeAfter, t.InstalledAt, t.UpdatedAt = timeOf(purgeAfter), timeOf(installedAt), timeOf(updatedAt)
	return &t, nil
}

// timeArg stores the zero time as NULL.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// timeOf reads NULL as the zero time and everything else in UTC.
func timeOf(ts pgtype.Timestamptz) time.Time {
	if !ts.Valid {
		return time.Time{}
	}
	return ts.Time.UTC()
}

// TenantChanges reads the change sequence the realmhook_tenants trigger keeps.
func (s *Store) TenantChanges(ctx context.Context, after int64) (int64, []string, bool, error) {
	var seq int64
	var keys []string
	first := int64(-1)
	err := s.run(ctx, true, func(ctx context.Context) error {
		keys, first = nil, -1
		if err := s.pool.QueryRow(ctx, "SELECT seq FROM realmhook_tenant_seq WHERE id = 1").Scan(&seq); err != nil {
			return err
		}
		if seq <= after {
			return nil
		}
		rows, err := s.pool.Query(ctx, "SELECT seq, client_key FROM realmhook_tenant_changes WHERE seq > $1 AND seq <= $2 ORDER BY seq", after, seq)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n int64
			var key string
			if err := rows.Scan(&n, &key); err != nil {
				return err
			}
			if first < 0 {
				first = n
			}
			keys = append(keys, key)
		}
		return rows.Err()
	})
	switch {
	case err != nil:
		return 0, nil, false, fmt.Errorf("tenant changes: %w", dataError(err))
	case seq == after:
		return seq, nil, true, nil
	case seq < after:
		// The database was replaced or restored under us.
		return seq, nil, false, nil
	}
	return seq, keys, first == after+1, nil
}

// FindTenants returns the client keys of the records of any of the
// installations or of the cloud id, by clientKey in byte order.
func (s *Store) FindTenants(ctx context.Context, installationIDs []string, cloudID string) ([]string, error) {
	ids := make([]string, 0, len(installationIDs))
	for _, id := range installationIDs {
		if id == "" {
			continue
		}
		if err := checkText("installation id", id, false); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := checkText("cloud id", cloudID, true); err != nil {
		return nil, err
	}
	var out []string
	err := s.run(ctx, true, func(ctx context.Context) error {
		out = nil
		rows, err := s.pool.Query(ctx, `SELECT client_key FROM realmhook_tenants
			WHERE (installation_id <> '' AND installation_id = ANY($1))
			   OR (cloud_id <> '' AND cloud_id = $2)
			ORDER BY client_key`, ids, cloudID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				return err
			}
			out = append(out, k)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("find tenants: %w", dataError(err))
	}
	return out, nil
}
