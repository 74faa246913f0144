// Package store defines how realmhook reads and writes one realm's database.
// Every backend (store/sqlite, store/postgres) implements Store and passes the
// shared conformance suite in store/storetest; nothing above this package knows
// which backend it talks to.
package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/realmhook/realmhook"
)

// RowError is a write the target refused because of a row's data: a value
// it cannot hold exactly, a constraint, a duplicate key. It names the table
// and, where known, the column and the row's key: the tenant's data, for
// logs and the migration's events, not for the host. The code of the error
// it wraps (EINVALID, ECONFLICT) stays visible to realmhook.ErrorCode.
type RowError struct {
	Table  string
	Column string // "" when the database did not say
	Key    Row    // nil when unknown
	Err    error
}

func (e *RowError) Error() string {
	msg := "table " + e.Table
	if e.Column != "" {
		msg += ", column " + e.Column
	}
	if e.Key != nil {
		msg += fmt.Sprintf(", row with key %v", []any(e.Key))
	}
	return msg + ": " + e.Err.Error()
}

func (e *RowError) Unwrap() error { return e.Err }

// Table is a tenant-scoped table the migration engine copies: rows whose
// TenantColumn equals the tenant's clientKey, read in the order of Key.
// Key must identify a row within a tenant.
type Table struct {
	Name         string
	TenantColumn string
	Key          []string
	// AllowTriggers: the app accepts that the target's triggers fire for
	// copied rows where the backend cannot keep them from firing.
	AllowTriggers bool
}

// PropertiesTable is the built-in property store as a copyable Table.
var PropertiesTable = Table{Name: "realmhook_properties", TenantColumn: "client_key", Key: []string{"key"}}

// ForeignKey is one foreign key constraint as the database's catalog has it:
// rows of Child reference rows of Parent.
type ForeignKey struct {
	Child, Parent string
	// Deferrable: the database may check it at commit rather than per
	// statement, so the order of writes within a transaction does not matter.
	Deferrable bool
}

// Infinity is a date's or timestamp's ±infinity (PostgreSQL's), which a
// time.Time cannot hold: +1 or -1.
type Infinity int8

// Source describes where the rows given to Incoming come from: the source
// database's backend and its columns' declared types, in the same order.
type Source struct {
	Backend string
	Types   []string
}

// Row is one table row as Go values, in the column order the caller asked
// for, each value in its backend's own terms: SQLite's as stored (nil,
// int64, float64, string, []byte: the storage class and bytes, whatever the
// declared type); PostgreSQL's as int64, float64, bool, string, []byte,
// time.Time (UTC) or Infinity for the types Go holds exactly, and the
// value's text (as PostgreSQL prints it) for every other type. A row crosses
// to another backend through the target's Incoming, which converts it to the
// target's terms or refuses it.
type Row []any

// Limit caps how many migrations one realm's database holds in some states
// at once: every replica of the realm counts the same rows.
type Limit struct {
	// Max is how many may be in States at once; 0 means no limit.
	Max    int
	States []realmhook.MigrationState
}

// LimitError is why CreateMigrationWithin refused a migration: Active
// migrations were already in the limit's states, and Max are allowed.
type LimitError struct {
	Active, Max int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%d migrations are in the limited states; the limit is %d", e.Active, e.Max)
}

// LimitReached returns CreateMigrationWithin's refusal: ECONFLICT, caused by
// a *LimitError, so that every backend refuses in the same terms.
func LimitReached(active, max int) error {
	return &realmhook.Error{Code: realmhook.ECONFLICT, Message: "too many migrations at once",
		Err: &LimitError{Active: active, Max: max}}
}

// Store is one realm's database.
//
// Errors are *realmhook.Error where the caller can act on them: ENOTFOUND for a
// missing tenant, property or migration; ECONFLICT for a failed compare-and-set;
// EMIGRATING for a write to a frozen tenant; EUNAVAILABLE (realmhook.ErrUnavailable
// in the chain, marked by realmhook.Unavailable) for a database that could not
// be reached, lost the connection, was shutting down or busy, which is the one
// kind of error a migration retries and the host is told to retry. Every other
// error (a value the target cannot hold, a constraint, a missing table) would
// recur. Anything else is wrapped with context.
type Store interface {
	// Backend names the implementation ("sqlite", "postgres") for logs and metrics.
	Backend() string
	// Ping checks that the database answers (for /readyz).
	Ping(ctx context.Context) error
	Close() error

	// GetTenant returns the tenant record, whatever its state.
	GetTenant(ctx context.Context, clientKey string) (*realmhook.Tenant, error)
	// PutTenant inserts or replaces the whole tenant record, as given: it
	// creates records (and lets tests set any state). A change of an existing
	// record's state goes through UpdateTenant, which checks it. The events
	// are written to the outbox in the same transaction.
	PutTenant(ctx context.Context, t *realmhook.Tenant, events ...realmhook.Event) error
	// UpdateTenant reads the tenant, lets change edit it and writes it back in
	// one transaction that holds off every other writer of the record, so two
	// read-modify-writes (a lifecycle hook and a migration's freeze) cannot
	// undo each other. ENOTFOUND if there is no record; an error from change
	// aborts the update and is returned as is; a state change that
	// realmhook.CheckTenantTransition refuses aborts it with ECONFLICT. The
	// events are written to the outbox in the same transaction, so they land
	// if and only if the update does.
	UpdateTenant(ctx context.Context, clientKey string, change func(*realmhook.Tenant) error, events ...realmhook.Event) (*realmhook.Tenant, error)
	// DeleteTenant removes the tenant record only (not its rows); no error if absent.
	DeleteTenant(ctx context.Context, clientKey string) error
	// ListTenants returns tenants in the given state, by clientKey.
	ListTenants(ctx context.Context, state realmhook.TenantState) ([]*realmhook.Tenant, error)
	// FindTenants returns the client keys of the records, in any state,
	// whose InstallationID is one of installationIDs or whose CloudID is
	// cloudID (an empty cloudID matches none), by clientKey: how a Forge
	// installation finds its tenant.
	FindTenants(ctx context.Context, installationIDs []string, cloudID string) ([]string, error)
	// PageTenants returns up to limit tenants whose clientKey sorts after
	// `after` (keyset pagination), by clientKey, in the given state or, for
	// realmhook.TenantNone, in any state: an operator's listing, which must
	// not read a realm of a hundred thousand tenants at once.
	PageTenants(ctx context.Context, state realmhook.TenantState, after string, limit int) ([]*realmhook.Tenant, error)
	// CountTenants returns how many tenant records the realm holds in each
	// state; a state without records is absent.
	CountTenants(ctx context.Context) (map[realmhook.TenantState]int64, error)
	// TenantChanges tells a cache of tenant records what changed. Every write
	// of a tenant record (insert, replace, update, delete; by any process)
	// bumps the realm's tenant change sequence number in its own transaction.
	// TenantChanges returns that number now and the client keys of the
	// records written after sequence number `after`, possibly repeated.
	// complete is false when the log no longer reaches back to `after` (it
	// keeps the last 10,000 changes): the caller must then forget all it
	// caches.
	TenantChanges(ctx context.Context, after int64) (seq int64, changed []string, complete bool, err error)

	// GetProperty returns a property's JSON value.
	GetProperty(ctx context.Context, clientKey, key string) ([]byte, error)
	// PutProperty creates or replaces a property and reports whether it was
	// created. In the same transaction it checks that the tenant is active and
	// not frozen (EMIGRATING otherwise, ENOTFOUND for no active tenant), so no
	// write slips past a migration's freeze.
	PutProperty(ctx context.Context, clientKey, key string, value []byte) (created bool, err error)
	// DeleteProperty removes a property under the same check as PutProperty;
	// ENOTFOUND if it did not exist.
	DeleteProperty(ctx context.Context, clientKey, key string) error
	// ListProperties returns up to limit properties whose key starts with
	// prefix and sorts after `after` (keyset pagination), by key.
	ListProperties(ctx context.Context, clientKey, prefix, after string, limit int) ([]realmhook.Property, error)

	// CreateMigration inserts a new migration and its first event; ECONFLICT if
	// (ClientKey, ID) exists.
	CreateMigration(ctx context.Context, m *realmhook.Migration) error
	// CreateMigrationWithin is CreateMigration under lim: in the same
	// transaction it counts the database's migrations in lim.States, m
	// included, and writes nothing when that exceeds lim.Max (ECONFLICT with
	// a *LimitError in the chain; a duplicate (ClientKey, ID) is ECONFLICT
	// without one). These creates are serialised on the database, whichever
	// process makes them, so replicas scheduling at once cannot all take the
	// last slot. lim.Max 0 means no limit.
	CreateMigrationWithin(ctx context.Context, m *realmhook.Migration, lim Limit) error
	// GetMigration returns one migration.
	GetMigration(ctx context.Context, clientKey, id string) (*realmhook.Migration, error)
	// UpdateMigration writes m if the stored state is still `from` (ECONFLICT
	// otherwise). When m.State differs from `from`, an event row (from, to,
	// detail) is written in the same transaction, and so are the outbox
	// events (whatever the state).
	UpdateMigration(ctx context.Context, m *realmhook.Migration, from realmhook.MigrationState, detail string, events ...realmhook.Event) error
	// PutMigration inserts or replaces a migration record without an event
	// (the copy of a committed migration kept in the target realm).
	PutMigration(ctx context.Context, m *realmhook.Migration) error
	// ListMigrations returns migrations in any of the given states (all when
	// none are given), oldest first.
	ListMigrations(ctx context.Context, states ...realmhook.MigrationState) ([]*realmhook.Migration, error)
	// ListMigrationEvents returns a migration's events, oldest first.
	ListMigrationEvents(ctx context.Context, clientKey, id string) ([]realmhook.MigrationEvent, error)

	// NextEvents returns, from the outbox, the oldest event of each tenant
	// whose next attempt is due (NotBefore not after now), at most limit of
	// them, in Seq order. A tenant's later events wait until its oldest is
	// deleted, so that the app receives each tenant's events in order; a
	// tenant whose app keeps refusing holds up no other tenant. Within one
	// tenant, Seq order is the order in which the changes were committed.
	NextEvents(ctx context.Context, now time.Time, limit int) ([]QueuedEvent, error)
	// DeleteEvent removes a delivered event; no error if it is gone.
	DeleteEvent(ctx context.Context, seq int64) error
	// DeferEvent records a failed delivery of an event: one attempt more, the
	// next not before notBefore, and why; no error if the event is gone.
	DeferEvent(ctx context.Context, seq int64, notBefore time.Time, reason string) error
	// CountEvents returns how many events the outbox holds, by type.
	CountEvents(ctx context.Context) (map[realmhook.EventType]int64, error)

	// AcquireLease takes or renews the named lease for owner until now+ttl.
	// It succeeds if the lease is free, expired, or already owner's.
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration, now time.Time) (bool, error)
	// ReleaseLease frees the lease if owner holds it.
	ReleaseLease(ctx context.Context, name, owner string) error

	// Columns returns a table's column names in table order, generated
	// columns included; ENOTFOUND if the table does not exist.
	Columns(ctx context.Context, table string) ([]string, error)
	// CheckTable checks that t can be migrated in this database: ENOTFOUND if
	// the table does not exist, EINVALID (naming what is missing) if it lacks
	// the tenant column or a key column, or has no unique key (primary key or
	// unique index, without a predicate or expressions) whose columns all lie
	// within the tenant column and the key columns: without one, a resumed
	// copy could write a row twice and reading by key would not be a total
	// order.
	CheckTable(ctx context.Context, t Table) error
	// ReadRows returns up to limit rows of the tenant with key greater than
	// after (nil: from the start), ordered by t.Key, with the given columns.
	// Key columns must be among columns.
	ReadRows(ctx context.Context, t Table, columns []string, clientKey string, after Row, limit int) ([]Row, error)
	// ScanRows calls fn for every row of the tenant, in no particular order,
	// and returns fn's first error as is. The Row is fn's only until it
	// returns: the backend may reuse the slice for the next row, so fn must
	// copy it to keep it (the values in it, []byte included, may be kept).
	ScanRows(ctx context.Context, t Table, columns []string, clientKey string, fn func(Row) error) error
	// CountRows counts the tenant's rows.
	CountRows(ctx context.Context, t Table, clientKey string) (int64, error)
	// CopyRows inserts the rows next hands out, batch after batch, in one
	// transaction (one COPY on PostgreSQL), and returns how many it wrote:
	// all of them land or none do. Values of columns the database generates
	// are left out: it computes them (and verification compares them). The
	// target's triggers do not fire for the rows where the backend can keep
	// them quiet (see Triggers). next returns the next batch (values in
	// columns order), or an empty batch at the end; CopyRows is done with a
	// batch when it calls next again, so the caller may then reuse it. An
	// error from next ends the copy, writes nothing and is returned as is.
	// A row whose key exists is ECONFLICT and nothing is written. Streaming
	// many batches through one transaction is what makes a bulk copy fast:
	// one commit (one WAL flush) per call instead of one per batch.
	CopyRows(ctx context.Context, t Table, columns []string, next func() ([]Row, error)) (int64, error)
	// ColumnTypes returns the declared type of each of table's columns, in
	// Columns' order (PostgreSQL: the base type's name; SQLite: the type as
	// written in CREATE TABLE).
	ColumnTypes(ctx context.Context, table string) ([]string, error)
	// Incoming returns the conversion of a row (the given columns, read from
	// the source) into exactly the values ReadRows will return for it once
	// CopyRows has written it here, which the copy checksums and then
	// writes, so that source and target compare in the target's terms. A
	// value the column cannot hold exactly fails the conversion with a
	// *RowError (EINVALID) naming the column and the row's key. Incoming
	// itself fails (EINVALID naming the column) when a column's values can
	// never cross from that source, such as money into SQLite.
	Incoming(ctx context.Context, t Table, columns []string, from Source) (func(Row) error, error)
	// ForeignKeys returns the foreign keys declared on table (the child),
	// each naming the table it references; none for a missing table.
	ForeignKeys(ctx context.Context, table string) ([]ForeignKey, error)
	// Triggers returns, by name, the table's user triggers that would fire
	// for the rows CopyRows writes: those this backend cannot keep quiet
	// (PostgreSQL keeps every trigger quiet for them when the role may set
	// session_replication_role, except ENABLE ALWAYS ones; SQLite cannot
	// keep any quiet).
	Triggers(ctx context.Context, table string) ([]string, error)
	// AdvanceSequences moves every sequence that feeds one of table's
	// columns (serial, identity) past the largest value the table holds, so
	// that the app's next insert does not collide with a copied row.
	AdvanceSequences(ctx context.Context, table string) error
	// Snapshot returns a read-only view of the database as of now, for
	// reading a tenant that is not frozen (a rehearsal): its ReadRows,
	// ScanRows and CountRows all see one consistent committed state,
	// whatever is written meanwhile, and nothing can be written through it.
	// Close ends the snapshot, not the database.
	Snapshot(ctx context.Context) (Snapshot, error)
	// DeleteRows deletes the tenant's rows whose key is greater than after, or
	// all of the tenant's rows when after is nil, and returns how many.
	DeleteRows(ctx context.Context, t Table, clientKey string, after Row) (int64, error)
}

// QueuedEvent is an event in a realm's outbox, waiting to be delivered.
type QueuedEvent struct {
	// Seq is the event's place in the outbox.
	Seq int64
	realmhook.Event
	// Attempts counts the deliveries that failed so far.
	Attempts int
	// NotBefore is when the next attempt is due (zero: at once).
	NotBefore time.Time
	// LastError says why the last attempt failed.
	LastError string
}

// CheckEvents is the one check of events given to a store write: each needs
// an id, a type and a tenant.
func CheckEvents(events []realmhook.Event) error {
	for _, e := range events {
		if e.ID == "" || e.Type == "" || e.ClientKey == "" {
			return realmhook.Errorf(realmhook.EINVALID, "outbox event %q of type %q for tenant %q: id, type and clientKey are required", e.ID, e.Type, e.ClientKey)
		}
	}
	return nil
}

// Reader is what a copy reads of its source: a Store, or a Snapshot of one.
type Reader interface {
	// Backend names the store's implementation.
	Backend() string
	Columns(ctx context.Context, table string) ([]string, error)
	ColumnTypes(ctx context.Context, table string) ([]string, error)
	ReadRows(ctx context.Context, t Table, columns []string, clientKey string, after Row, limit int) ([]Row, error)
	ScanRows(ctx context.Context, t Table, columns []string, clientKey string, fn func(Row) error) error
	CountRows(ctx context.Context, t Table, clientKey string) (int64, error)
}

// Snapshot is a read-only view of a realm's database as of one moment:
// every read sees the same committed state.
type Snapshot interface {
	Reader
	// Close ends the snapshot (its transaction).
	Close() error
}

// CheckUniqueKey is CheckTable's one rule, shared by the backends: among a
// table's unique keys (each a list of column names), one must lie within t's
// tenant column and key columns.
func CheckUniqueKey(t Table, uniqueKeys [][]string) error {
	allowed := map[string]bool{t.TenantColumn: true}
	for _, k := range t.Key {
		allowed[k] = true
	}
	for _, uk := range uniqueKeys {
		within := len(uk) > 0
		for _, c := range uk {
			within = within && allowed[c]
		}
		if within {
			return nil
		}
	}
	return realmhook.Errorf(realmhook.EINVALID, "table %s has no primary key or unique index on (%s)",
		t.Name, strings.Join(append([]string{t.TenantColumn}, t.Key...), ", "))
}
