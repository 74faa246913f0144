package migration

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// Peer is the target realm as the copy sees it: every write a migration makes
// to the target goes through it. LocalPeer serves a realm of this process; a
// transfer API client can serve a realm of another process.
//
// The target defends its own data: every destructive call is refused with
// ECONFLICT unless the target holds the tenant as incoming for the calling
// migration, so rows of a tenant the target serves are never touched.
type Peer interface {
	// PrepareIncoming stores t as the target's tenant record in state incoming,
	// frozen by migrationID. It refuses (ECONFLICT) when the target serves the
	// tenant (state active). It is idempotent.
	PrepareIncoming(ctx context.Context, t *realmhook.Tenant, migrationID string) error
	// ClearRows deletes all of the tenant's rows of table t.
	ClearRows(ctx context.Context, clientKey, migrationID string, t store.Table) (int64, error)
	// TrimRows deletes the tenant's rows of table t whose key is after `after`
	// (all rows when after is nil): what a copy wrote beyond its checkpoint.
	TrimRows(ctx context.Context, clientKey, migrationID string, t store.Table, after store.Row) (int64, error)
	// CopyRows inserts the rows next hands out, batch after batch (values in
	// columns order, all of the tenant), in one transaction, as
	// store.Store.CopyRows does, and returns how many it wrote. An error from
	// next ends it with nothing written and comes back wrapped (errors.Is and
	// errors.As find it).
	CopyRows(ctx context.Context, clientKey, migrationID string, t store.Table, columns []string, next func() ([]store.Row, error)) (int64, error)
	// Incoming returns the target's conversion of source rows of table t
	// into its own terms (store.Store.Incoming), which the copy applies
	// before it checksums and writes them; it fails when a column's values
	// can never cross from the source.
	Incoming(ctx context.Context, t store.Table, columns []string, from store.Source) (func(store.Row) error, error)
	// AdvanceSequences moves the sequences behind table t's columns past
	// the copied values (store.Store.AdvanceSequences), so that the app's
	// next insert there does not collide with a copied row.
	AdvanceSequences(ctx context.Context, clientKey, migrationID string, t store.Table) error
	// Checksum computes the tenant's checksum of table t over columns, the same
	// way as TableChecksum on the source.
	Checksum(ctx context.Context, clientKey string, t store.Table, columns []string) (Checksum, error)
	// Activate makes the target serve the tenant: it stores m (the committed
	// migration record) and then t in state active, unfrozen. Idempotent.
	Activate(ctx context.Context, t *realmhook.Tenant, m *realmhook.Migration) error
	// CheckTables checks that the target can take the tenant's tables: each
	// exists with its tenant column and a unique key within the tenant and
	// key columns (store.Store.CheckTable). ENOTFOUND or EINVALID name the
	// table.
	CheckTables(ctx context.Context, tables []store.Table) error
	// Discard undoes the migration m in the target: when the target holds the
	// tenant because of m (incoming for m, or activated by m's commit), it
	// deletes the tenant's rows of every table, in the order given (children
	// before parents), and then the tenant record.
	// Anything else is left alone. Idempotent.
	Discard(ctx context.Context, m *realmhook.Migration, tables []store.Table) error
}

// LocalPeer returns the Peer of a realm whose store this process holds.
func LocalPeer(s store.Store) Peer { return localPeer{s: s} }

// PeerOptions tune a LocalPeer.
type PeerOptions struct {
	// Events writes migration.committed to the target's outbox when Activate
	// makes the tenant active there (Config.Events for the target realm).
	Events bool
	// Now is the clock of the events (default time.Now).
	Now func() time.Time
}

// LocalPeerWith is LocalPeer with options.
func LocalPeerWith(s store.Store, opts PeerOptions) Peer {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return localPeer{s: s, opts: opts}
}

type localPeer struct {
	s    store.Store
	opts PeerOptions
}

func (p localPeer) PrepareIncoming(ctx context.Context, t *realmhook.Tenant, migrationID string) error {
	incoming := func(in *realmhook.Tenant) {
		*in = *t
		in.State = realmhook.TenantIncoming
		in.MigrationID = migrationID
		in.MovedTo = ""
		in.PurgeAfter = time.Time{}
	}
	// Under the tenant's lock, so that the purge sweeper, which moves a
	// record to purging the same way before deleting, and this never both
	// proceed.
	_, err := p.s.UpdateTenant(ctx, t.ClientKey, func(cur *realmhook.Tenant) error {
		switch {
		case cur.State == realmhook.TenantActive:
			return realmhook.Errorf(realmhook.ECONFLICT, "tenant %q is active in the target realm", t.ClientKey)
		case cur.State == realmhook.TenantUninstalled:
			// Data kept for a re-install here is not ours to overwrite, and a
			// rollback would delete it.
			return realmhook.Errorf(realmhook.ECONFLICT, "tenant %q has data kept from an uninstall in the target realm", t.ClientKey)
		case cur.State == realmhook.TenantPurging:
			return realmhook.Errorf(realmhook.ECONFLICT, "the target realm is deleting tenant %q's previous copy; retry the migration when it is done", t.ClientKey)
		case cur.State == realmhook.TenantIncoming && cur.MigrationID == migrationID:
			return nil
		}
		incoming(cur)
		return nil
	})
	if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
		var in realmhook.Tenant
		incoming(&in)
		err = p.s.PutTenant(ctx, &in)
	}
	if err != nil {
		return fmt.Errorf("prepare target: %w", err)
	}
	return nil
}

// guard refuses a write unless the target holds the tenant as incoming for
// migrationID.
func (p localPeer) guard(ctx context.Context, clientKey, migrationID string) error {
	cur, err := p.s.GetTenant(ctx, clientKey)
	if err != nil {
		return fmt.Errorf("target tenant: %w", err)
	}
	if cur.State != realmhook.TenantIncoming || cur.MigrationID != migrationID {
		return realmhook.Errorf(realmhook.ECONFLICT,
			"target holds tenant %q as %s (migration %q), not incoming for migration %q",
			clientKey, cur.State, cur.MigrationID, migrationID)
	}
	return nil
}

func (p localPeer) ClearRows(ctx context.Context, clientKey, migrationID string, t store.Table) (int64, error) {
	return p.TrimRows(ctx, clientKey, migrationID, t, nil)
}

func (p localPeer) TrimRows(ctx context.Context, clientKey, migrationID string, t store.Table, after store.Row) (int64, error) {
	if err := p.guard(ctx, clientKey, migrationID); err != nil {
		return 0, err
	}
	n, err := p.s.DeleteRows(ctx, t, clientKey, after)
	if err != nil {
		return 0, fmt.Errorf("trim %s: %w", t.Name, err)
	}
	return n, nil
}

func (p localPeer) CopyRows(ctx context.Context, clientKey, migrationID string, t store.Table, columns []string, next func() ([]store.Row, error)) (int64, error) {
	tc := slices.Index(columns, t.TenantColumn)
	if tc < 0 {
		return 0, realmhook.Errorf(realmhook.EINVALID, "write %s: columns lack tenant column %q", t.Name, t.TenantColumn)
	}
	if err := p.guard(ctx, clientKey, migrationID); err != nil {
		return 0, err
	}
	// Each batch is checked as it comes: a row of another tenant fails the
	// whole transaction, so nothing of it lands.
	checked := func() ([]store.Row, error) {
		rows, err := next()
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if len(r) != len(columns) || r[tc] != any(clientKey) {
				return nil, realmhook.Errorf(realmhook.EINVALID, "write %s: a row does not belong to tenant %q", t.Name, clientKey)
			}
		}
		return rows, nil
	}
	n, err := p.s.CopyRows(ctx, t, columns, checked)
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", t.Name, err)
	}
	return n, nil
}

func (p localPeer) Incoming(ctx context.Context, t store.Table, columns []string, from store.Source) (func(store.Row) error, error) {
	conv, err := p.s.Incoming(ctx, t, columns, from)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", t.Name, err)
	}
	return conv, nil
}

func (p localPeer) AdvanceSequences(ctx context.Context, clientKey, migrationID string, t store.Table) error {
	if err := p.guard(ctx, clientKey, migrationID); err != nil {
		return err
	}
	if err := p.s.AdvanceSequences(ctx, t.Name); err != nil {
		return fmt.Errorf("sequences of %s: %w", t.Name, err)
	}
	return nil
}

func (p localPeer) Checksum(ctx context.Context, clientKey string, t store.Table, columns []string) (Checksum, error) {
	return TableChecksum(ctx, p.s, t, columns, clientKey)
}

func (p localPeer) Activate(ctx context.Context, t *realmhook.Tenant, m *realmhook.Migration) error {
	cur, err := p.s.GetTenant(ctx, t.ClientKey)
	if err != nil {
		return fmt.Errorf("activate: %w", err)
	}
	switch {
	case cur.State == realmhook.TenantIncoming && cur.MigrationID == m.ID:
	case cur.State == realmhook.TenantActive && p.committedHere(ctx, m):
		return nil // a repeat: already done
	default:
		return realmhook.Errorf(realmhook.ECONFLICT, "activate: target holds tenant %q as %s (migration %q)", t.ClientKey, cur.State, cur.MigrationID)
	}
	// The migration record first: it is what marks the active tenant as ours
	// should the commit be rolled back before it completes (see Discard).
	if err := p.s.PutMigration(ctx, m); err != nil {
		return fmt.Errorf("activate: store migration: %w", err)
	}
	act := *t
	act.State = realmhook.TenantActive
	act.MigrationID = ""
	act.MovedTo = ""
	act.PurgeAfter = time.Time{}
	// The target's app hears that the tenant arrived from the transaction
	// that makes it active here; a repeat returned above, writing nothing.
	var events []realmhook.Event
	if p.opts.Events {
		events = append(events, realmhook.NewMigrationEvent(realmhook.EventMigrationCommitted, t, m, m.TargetRealm, p.opts.Now()))
	}
	// Under the tenant's lock, and checked as every state change is.
	_, err = p.s.UpdateTenant(ctx, t.ClientKey, func(cur *realmhook.Tenant) error {
		if cur.State != realmhook.TenantIncoming || cur.MigrationID != m.ID {
			return realmhook.Errorf(realmhook.ECONFLICT, "activate: target holds tenant %q as %s (migration %q)", t.ClientKey, cur.State, cur.MigrationID)
		}
		*cur = act
		return nil
	}, events...)
	if err != nil {
		return fmt.Errorf("activate: %w", err)
	}
	return nil
}

// committedHere reports whether the target holds m's committed record, i.e.
// whether m's commit activated the tenant here.
func (p localPeer) committedHere(ctx context.Context, m *realmhook.Migration) bool {
	got, err := p.s.GetMigration(ctx, m.ClientKey, m.ID)
	return err == nil && got.State == realmhook.MigrationCommitted && got.SourceRealm == m.SourceRealm
}

func (p localPeer) CheckTables(ctx context.Context, tables []store.Table) error {
	return CheckTables(ctx, p.s, tables)
}

// CheckTables checks every table with st.CheckTable, naming the first that
// fails.
func CheckTables(ctx context.Context, st store.Store, tables []store.Table) error {
	for _, t := range tables {
		if err := st.CheckTable(ctx, t); err != nil {
			return fmt.Errorf("table %s: %w", t.Name, err)
		}
	}
	return nil
}

func (p localPeer) Discard(ctx context.Context, m *realmhook.Migration, tables []store.Table) error {
	cur, err := p.s.GetTenant(ctx, m.ClientKey)
	if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
		// Nothing of ours left, but a discard that stopped after deleting the
		// tenant may have left m's committed record behind.
		return p.markRolledBack(ctx, m)
	} else if err != nil {
		return fmt.Errorf("discard: %w", err)
	}
	activated := cur.State == realmhook.TenantActive && p.committedHere(ctx, m)
	if !activated && (cur.State != realmhook.TenantIncoming || cur.MigrationID != m.ID) {
		return nil
	}
	// Rows before the record: should this stop half-way, the record still says
	// the rows are ours and a repeat finishes the job.
	for _, t := range tables {
		if err := deleteTenantRows(ctx, p.s, t, m.ClientKey); err != nil {
			return fmt.Errorf("discard %s: %w", t.Name, err)
		}
	}
	if err := p.s.DeleteTenant(ctx, m.ClientKey); err != nil {
		return fmt.Errorf("discard: %w", err)
	}
	return p.markRolledBack(ctx, m)
}

// markRolledBack turns a committed record of m kept here by Activate into a
// rolled-back one, so that no lookup finds a commit that was undone.
func (p localPeer) markRolledBack(ctx context.Context, m *realmhook.Migration) error {
	if !p.committedHere(ctx, m) {
		return nil
	}
	undone := *m
	undone.State = realmhook.MigrationRolledBack
	if err := p.s.PutMigration(ctx, &undone); err != nil {
		return fmt.Errorf("discard: migration record: %w", err)
	}
	return nil
}

// deleteTenantRows deletes all of a tenant's rows of t. A table that does not
// exist holds nothing to delete: a rollback or a purge must finish (and lift
// the freeze) even when a configured table is missing in the realm.
func deleteTenantRows(ctx context.Context, st store.Store, t store.Table, clientKey string) error {
	_, err := st.DeleteRows(ctx, t, clientKey, nil)
	if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
		if _, cerr := st.Columns(ctx, t.Name); realmhook.ErrorCode(cerr) == realmhook.ENOTFOUND {
			return nil
		}
	}
	return err
}
