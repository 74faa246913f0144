package transfer

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/realmhook/realmhook"
	peerv1 "github.com/realmhook/realmhook/gen/realmhook/peer/v1"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/store"
)

// ts is t on the wire; Go's zero time is no timestamp at all.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// fromTS is ts's inverse.
func fromTS(p *timestamppb.Timestamp) time.Time {
	if p == nil {
		return time.Time{}
	}
	return p.AsTime()
}

func tableToWire(t store.Table) *peerv1.Table {
	return &peerv1.Table{Name: t.Name, TenantColumn: t.TenantColumn, Key: t.Key, AllowTriggers: t.AllowTriggers}
}

func tableFromWire(p *peerv1.Table) store.Table {
	if p == nil {
		return store.Table{}
	}
	return store.Table{Name: p.Name, TenantColumn: p.TenantColumn, Key: p.Key, AllowTriggers: p.AllowTriggers}
}

func tablesToWire(ts []store.Table) []*peerv1.Table {
	out := make([]*peerv1.Table, len(ts))
	for i, t := range ts {
		out[i] = tableToWire(t)
	}
	return out
}

func tablesFromWire(ps []*peerv1.Table) []store.Table {
	out := make([]store.Table, len(ps))
	for i, p := range ps {
		out[i] = tableFromWire(p)
	}
	return out
}

func tenantToWire(t *realmhook.Tenant) *peerv1.Tenant {
	return &peerv1.Tenant{
		ClientKey: t.ClientKey, SharedSecret: t.SharedSecret, BaseUrl: t.BaseURL, DisplayUrl: t.DisplayURL,
		ProductType: t.ProductType, Description: t.Description, ServiceEntitlementNumber: t.ServiceEntitlementNumber,
		InstallationId: t.InstallationID, CloudId: t.CloudID, OauthClientId: t.OAuthClientID, PluginsVersion: t.PluginsVersion, AppKey: t.AppKey,
		State: string(t.State), Enabled: t.Enabled, MigrationId: t.MigrationID, MovedTo: t.MovedTo,
		PurgeAfter: ts(t.PurgeAfter), InstalledAt: ts(t.InstalledAt), UpdatedAt: ts(t.UpdatedAt),
	}
}

func tenantFromWire(p *peerv1.Tenant) *realmhook.Tenant {
	if p == nil {
		return &realmhook.Tenant{}
	}
	return &realmhook.Tenant{
		ClientKey: p.ClientKey, SharedSecret: p.SharedSecret, BaseURL: p.BaseUrl, DisplayURL: p.DisplayUrl,
		ProductType: p.ProductType, Description: p.Description, ServiceEntitlementNumber: p.ServiceEntitlementNumber,
		InstallationID: p.InstallationId, CloudID: p.CloudId, OAuthClientID: p.OauthClientId, PluginsVersion: p.PluginsVersion, AppKey: p.AppKey,
		State: realmhook.TenantState(p.State), Enabled: p.Enabled, MigrationID: p.MigrationId, MovedTo: p.MovedTo,
		PurgeAfter: fromTS(p.PurgeAfter), InstalledAt: fromTS(p.InstalledAt), UpdatedAt: fromTS(p.UpdatedAt),
	}
}

func migrationToWire(m *realmhook.Migration) *peerv1.Migration {
	return &peerv1.Migration{
		ClientKey: m.ClientKey, Id: m.ID, SourceRealm: m.SourceRealm, TargetRealm: m.TargetRealm, State: string(m.State),
		StartTime: ts(m.StartTime), EndTime: ts(m.EndTime), ErrorResponseCode: m.ErrorResponseCode, Message: m.Message,
		TablesDone: int64(m.Progress.TablesDone), TablesTotal: int64(m.Progress.TablesTotal),
		RowsCopied: m.Progress.RowsCopied, RowsTotal: m.Progress.RowsTotal,
		Checkpoint: m.Checkpoint, CreatedAt: ts(m.CreatedAt), UpdatedAt: ts(m.UpdatedAt),
	}
}

func migrationFromWire(p *peerv1.Migration) *realmhook.Migration {
	if p == nil {
		return &realmhook.Migration{}
	}
	return &realmhook.Migration{
		ClientKey: p.ClientKey, ID: p.Id, SourceRealm: p.SourceRealm, TargetRealm: p.TargetRealm, State: realmhook.MigrationState(p.State),
		StartTime: fromTS(p.StartTime), EndTime: fromTS(p.EndTime), ErrorResponseCode: p.ErrorResponseCode, Message: p.Message,
		Progress: realmhook.Progress{
			TablesDone: int(p.TablesDone), TablesTotal: int(p.TablesTotal), RowsCopied: p.RowsCopied, RowsTotal: p.RowsTotal,
		},
		Checkpoint: p.Checkpoint, CreatedAt: fromTS(p.CreatedAt), UpdatedAt: fromTS(p.UpdatedAt),
	}
}

func checksumToWire(c migration.Checksum) *peerv1.Checksum {
	sum := c.Sum()
	return &peerv1.Checksum{Rows: c.Rows, Sum: sum[:]}
}

func checksumFromWire(p *peerv1.Checksum) (migration.Checksum, error) {
	var sum [16]byte
	if p == nil || len(p.Sum) != len(sum) {
		return migration.Checksum{}, realmhook.Errorf(realmhook.EINVALID, "checksum: want %d bytes of sum", len(sum))
	}
	copy(sum[:], p.Sum)
	return migration.ChecksumOf(p.Rows, sum), nil
}

// encodeKey is a checkpoint key on the wire (nil: none).
func encodeKey(after store.Row) ([]byte, error) {
	if after == nil {
		return nil, nil
	}
	return migration.AppendRow(nil, after)
}

// decodeKey is encodeKey's inverse.
func decodeKey(b []byte) (store.Row, error) {
	if len(b) == 0 {
		return nil, nil
	}
	r, n, err := migration.DecodeRow(b)
	if err != nil || n != len(b) {
		return nil, realmhook.Errorf(realmhook.EINVALID, "trim: malformed key")
	}
	return r, nil
}
