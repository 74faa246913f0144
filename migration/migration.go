// Package migration copies a tenant between realms' databases: schedule, start,
// copy, verify, commit, rollback, resume and purge.
package migration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// Config tunes the engine; zero values take the defaults below.
type Config struct {
	// Enabled switches migrations on; off, every schedule is refused with E0003.
	Enabled bool
	// MaxConcurrent caps migrations scheduled or running across every served
	// realm (E0004 beyond); 0 means no cap. The count is the databases':
	// each realm's is taken in the transaction that creates a migration, so
	// every replica serving the realm holds to one cap together.
	MaxConcurrent int
	// BatchRows is how many rows one read of the source moves (default
	// 5000); memory holds a few batches.
	BatchRows int
	// CheckpointRows is how many rows are copied between saved checkpoints
	// (default 50000), each interval's batches written to the target in one
	// transaction; a crash re-copies at most this many per table.
	CheckpointRows int
	// PurgeAfter is how long a moved tenant's source copy is kept (default
	// DefaultPurgeAfter).
	PurgeAfter time.Duration
	// LeaseTTL is how long a replica's claim on a job lasts unrenewed (default
	// 30s). Other replicas look for abandoned jobs every LeaseTTL/2.
	LeaseTTL time.Duration
	// SweepInterval is how often the purge sweeper runs (default
	// DefaultSweepInterval).
	SweepInterval time.Duration
	// Tables are the app's tenant-scoped tables, copied after
	// store.PropertiesTable in this order.
	Tables []store.Table
	// Events writes the lifecycle events of migrations (started, committed,
	// rolled back) to the realms' outboxes, with the state changes they
	// announce, for the gateway to deliver to the app. Off, none are written.
	Events bool
}

// Defaults for zero Config values. They are the one definition: package
// config applies the same constants to the YAML file, so the binary and a Go
// caller of New get the same engine.
const (
	DefaultBatchRows      = 5000
	DefaultCheckpointRows = 50000
	// DefaultPurgeAfter keeps a moved tenant's source copy for a week.
	DefaultPurgeAfter    = 168 * time.Hour
	DefaultLeaseTTL      = 30 * time.Second
	DefaultSweepInterval = time.Minute
)

// Options are the engine's collaborators.
type Options struct {
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests move it instead of sleeping.
	Now func() time.Time
	// Owner names this replica in leases (default hostname, pid and a random
	// suffix, so that two processes never share one).
	Owner string
}

// Service is the migration engine of one process. Every migration's state
// lives in the source realm's database, so any replica may answer a hook or
// resume a job; leases keep two replicas from running one job at once.
type Service struct {
	cfg    Config
	served map[string]store.Store
	peers  map[string]Peer
	tables []store.Table
	log    *slog.Logger
	now    func() time.Time
	owner  string

	// base is the lifetime of background jobs: cancelled when Run's context
	// ends or Close is called.
	base context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu sync.Mutex
	// busy holds the in-process holder of each migration (a background job or
	// a hook finishing a commit or rollback), by lease name.
	busy map[string]*holder
	// scheduleMu serialises the count-then-create of Schedule in this process.
	scheduleMu sync.Mutex
	// status answers Status from memory, refreshed at most every
	// StatusMaxStale, and is told of every transition made here.
	status *statusCache
	// rehearsals are this process's dry runs of migrations.
	rehearsals rehearsals
}

// holder is one in-process claim on a migration.
type holder struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns the engine. served maps each realm key this process serves to
// its store; peers maps each realm key a migration may target to its Peer (for
// the embedded shape, LocalPeer of every served store). A schedule to a realm
// not in peers is refused with E0002.
func New(cfg Config, served map[string]store.Store, peers map[string]Peer, opts Options) *Service {
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = DefaultBatchRows
	}
	if cfg.CheckpointRows <= 0 {
		cfg.CheckpointRows = DefaultCheckpointRows
	}
	if cfg.PurgeAfter <= 0 {
		cfg.PurgeAfter = DefaultPurgeAfter
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Owner == "" {
		opts.Owner = defaultOwner()
	}
	tables := []store.Table{store.PropertiesTable}
	for _, t := range cfg.Tables {
		if t.Name != store.PropertiesTable.Name {
			tables = append(tables, t)
		}
	}
	base, stop := context.WithCancel(context.Background())
	return &Service{
		cfg:    cfg,
		served: served,
		peers:  peers,
		tables: tables,
		log:    opts.Logger.With("component", "migration"),
		now:    opts.Now,
		owner:  opts.Owner,
		base:   base,
		stop:   stop,
		busy:   make(map[string]*holder),
		status: newStatusCache(opts.Now),
	}
}

func defaultOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Run resumes every copying or verifying migration from its checkpoint and
// finishes recorded commits and rollbacks, then, until ctx ends, takes over
// jobs whose lease expired, fails migrations whose window ended, and sweeps
// moved tenants' leftover copies. It returns nil once every background job the
// Service started, including those started by Start, has stopped.
func (s *Service) Run(ctx context.Context) error {
	defer s.Close()
	s.poll(ctx)
	s.sweep(ctx)
	pollEvery := time.NewTicker(max(s.cfg.LeaseTTL/2, time.Millisecond))
	defer pollEvery.Stop()
	sweepEvery := time.NewTicker(s.cfg.SweepInterval)
	defer sweepEvery.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.base.Done():
			return nil
		case <-pollEvery.C:
			s.poll(ctx)
		case <-sweepEvery.C:
			s.sweep(ctx)
		}
	}
}

// Close stops every background job and waits for them; the Service starts no
// new ones afterwards. Run calls it on return.
func (s *Service) Close() {
	s.mu.Lock()
	s.stop()
	s.mu.Unlock()
	s.wg.Wait()
}

// Wait blocks until the migration reaches one of the given states or ctx ends,
// polling its record in the database, not Status's cache: what it waits
// for may be another replica's doing.
func (s *Service) Wait(ctx context.Context, realm, clientKey, id string, states ...realmhook.MigrationState) (*realmhook.Migration, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		m, _, err := s.find(ctx, realm, clientKey, id)
		if err != nil {
			return nil, err
		}
		for _, st := range states {
			if m.State == st {
				return m, nil
			}
		}
		select {
		case <-ctx.Done():
			return m, fmt.Errorf("wait for migration %s: still %s: %w", id, m.State, ctx.Err())
		case <-tick.C:
		}
	}
}

// Events returns a migration's audit events, oldest first, from the store of
// its source realm.
func (s *Service) Events(ctx context.Context, realm, clientKey, id string) ([]realmhook.MigrationEvent, error) {
	m, _, err := s.find(ctx, realm, clientKey, id)
	if err != nil {
		return nil, err
	}
	src, ok := s.served[m.SourceRealm]
	if !ok {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "migration %q: source realm %s is not served here", id, m.SourceRealm)
	}
	ev, err := src.ListMigrationEvents(ctx, clientKey, id)
	if err != nil {
		return nil, fmt.Errorf("events of migration %s: %w", id, err)
	}
	return ev, nil
}

// find returns a migration and the key of the realm whose store holds it,
// looking in realm's store first and then in every served store.
func (s *Service) find(ctx context.Context, realm, clientKey, id string) (*realmhook.Migration, string, error) {
	if err := CheckID(id); err != nil {
		return nil, "", err
	}
	order := []string{realm}
	for k := range s.served {
		if k != realm {
			order = append(order, k)
		}
	}
	for _, k := range order {
		st, ok := s.served[k]
		if !ok {
			continue
		}
		m, err := st.GetMigration(ctx, clientKey, id)
		if err == nil {
			return s.authoritative(ctx, m, k)
		} else if realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
			return nil, "", fmt.Errorf("migration %s in realm %s: %w", id, k, err)
		}
	}
	return nil, "", notScheduled(clientKey, id)
}

// authoritative returns the source realm's record of m when this process
// serves the source. The target's copy says committed from the moment the
// target is activated, while the source may still be committing: a repeated
// /commit or a /rollback must act on the source's word, not the copy's.
func (s *Service) authoritative(ctx context.Context, m *realmhook.Migration, foundIn string) (*realmhook.Migration, string, error) {
	src, ok := s.served[m.SourceRealm]
	if m.SourceRealm == foundIn || !ok {
		return m, foundIn, nil
	}
	sm, err := src.GetMigration(ctx, m.ClientKey, m.ID)
	switch {
	case err == nil:
		return sm, m.SourceRealm, nil
	case realmhook.ErrorCode(err) == realmhook.ENOTFOUND:
		return m, foundIn, nil
	}
	return nil, "", fmt.Errorf("migration %s in source realm %s: %w", m.ID, m.SourceRealm, err)
}

// transition moves m to state `to` in st with an audit detail, after applying
// change to a copy, and writes events to st's outbox in the same
// transaction; on success m holds what was stored. ECONFLICT means another
// party changed the migration first.
func (s *Service) transition(ctx context.Context, st store.Store, m *realmhook.Migration, to realmhook.MigrationState, detail string, change func(*realmhook.Migration), events ...realmhook.Event) error {
	if err := checkTransition(m.State, to); err != nil {
		return err
	}
	next := *m
	next.State = to
	next.UpdatedAt = s.now().UTC()
	if change != nil {
		change(&next)
	}
	if err := st.UpdateMigration(ctx, &next, m.State, detail, events...); err != nil {
		if realmhook.ErrorCode(err) == realmhook.ECONFLICT {
			err = errStateChanged
		}
		return fmt.Errorf("migration %s %s → %s: %w", m.ID, m.State, to, err)
	}
	if src, ok := s.served[next.SourceRealm]; ok && src == st {
		s.status.publish(&next)
	}
	if m.State != to {
		s.log.Info("migration "+string(to), "tenant", m.ClientKey, "migration_id", m.ID,
			"from", string(m.State), "to", string(to), "source", m.SourceRealm, "target", m.TargetRealm, "detail", detail)
	}
	*m = next
	return nil
}

// event is the lifecycle event typ of migration m of tenant t for the app of
// realm, to write with the change it announces; none when Config.Events is
// off. t may be nil when the tenant's record is gone.
func (s *Service) event(typ realmhook.EventType, t *realmhook.Tenant, m *realmhook.Migration, realm string) []realmhook.Event {
	if !s.cfg.Events {
		return nil
	}
	if t == nil {
		t = &realmhook.Tenant{ClientKey: m.ClientKey}
	}
	return []realmhook.Event{realmhook.NewMigrationEvent(typ, t, m, realm, s.now())}
}

// fail moves m to failed because of a permanent error: with the host-facing
// code ResponseCode derives from it, the message hostMessage gives the host,
// and the whole error as the audit event's detail.
func (s *Service) fail(ctx context.Context, st store.Store, m *realmhook.Migration, cause error) error {
	return s.transition(ctx, st, m, realmhook.MigrationFailed, cause.Error(), func(n *realmhook.Migration) {
		n.ErrorResponseCode = ResponseCode(cause)
		n.Message = hostMessage(m.State, cause)
	})
}

// errStateChanged: another party (a hook, another replica) changed the
// migration between our read and our write; re-read and decide again.
var errStateChanged = errors.New("migration changed concurrently")

// leaseName is the lease that guards every job of one migration. Both parts
// may hold any character, ":" included, so each is escaped (url.QueryEscape
// leaves no ":" and escapes "%"): no two (clientKey, id) pairs share a name.
func leaseName(clientKey, id string) string {
	return "migration:" + url.QueryEscape(clientKey) + ":" + url.QueryEscape(id)
}

// CheckTables checks, at start-up, that every table a migration copies can
// be copied in every served realm: each exists with its tenant column and a
// unique key on the tenant and key columns. The error names realm and table.
func (s *Service) CheckTables(ctx context.Context) error {
	for _, r := range sortedKeys(s.served) {
		if err := CheckTables(ctx, s.served[r], s.tables); err != nil {
			return fmt.Errorf("realm %s: %w", r, err)
		}
	}
	return nil
}
