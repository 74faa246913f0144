// Package sqlite implements store.Store on one SQLite file per realm, for the
// embedded shape, with modernc.org/sqlite (no cgo).
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// busyTimeout bounds how long a connection waits for another process's write
// lock; within this process the single write connection serialises writers.
const busyTimeout = 10 * time.Second

// Options tune a Store.
type Options struct {
	// Logger receives schema and lifecycle messages; slog.Default() if nil.
	Logger *slog.Logger
	// Now is the clock for migration event times; time.Now if nil.
	Now func() time.Time
}

// Store is one realm's SQLite database.
//
// It holds two pools on the same file: one connection for writes, so that
// writers queue in Go rather than spinning on SQLITE_BUSY, and a pool of
// read-only connections, which WAL lets run beside the writer.
type Store struct {
	path   string
	w      *sql.DB
	r      *sql.DB
	logger *slog.Logger
	now    func() time.Time

	mu     sync.RWMutex
	tables map[string]*tableInfo // declared columns of copied tables, by name

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // prepared INSERTs of CopyRows, by SQL

	// Statements of every tenant request, prepared once: SQLite parsing a
	// statement costs more than running one of these lookups.
	pragmas string // the DSN parameters every connection opens with

	appOnce sync.Once
	app     *sql.DB // the app's pool, from SQLDB
	appErr  error

	prep struct {
		getTenant, getProperty, tenantSeq                             *sql.Stmt // on r
		checkWritable, insertProperty, updateProperty, deleteProperty *sql.Stmt // on w
	}

	// closed is set by Close: every later call fails, as EUNAVAILABLE.
	closed atomic.Bool
}

// readConns is the size of the read pool, idle connections included, so a
// burst of requests never opens (and pays for) new SQLite connections: each
// one runs the PRAGMAs and reads the schema. Reads are CPU-bound in this
// driver, so more than a few per core only queue inside SQLite instead of
// in database/sql.
func readConns() int { return max(8, 2*runtime.GOMAXPROCS(0)) }

var _ store.Store = (*Store)(nil)

// Open opens (creating it and its directory if needed) the SQLite database at
// path and brings its schema up to date.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, realmhook.Errorf(realmhook.EINVALID, "sqlite database path %q must name a file", path)
	}
	if strings.ContainsAny(path, "?\x00") {
		return nil, realmhook.Errorf(realmhook.EINVALID, "sqlite database path %q must not contain '?' or NUL", path)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite %s: create directory: %w", path, err)
	}

	common := "_pragma=busy_timeout(" + strconv.Itoa(int(busyTimeout/time.Millisecond)) + ")" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	w, err := sql.Open("sqlite", path+"?"+common+"&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)

	s := &Store{path: path, w: w, pragmas: common, logger: opts.Logger.With("backend", "sqlite", "path", path), now: opts.Now,
		tables: map[string]*tableInfo{}, stmts: map[string]*sql.Stmt{}}
	// The schema (and WAL mode, which is persistent) must exist before readers open.
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(readConns())
	r.SetMaxIdleConns(readConns())
	r.SetConnMaxIdleTime(0)
	r.SetConnMaxLifetime(0)
	s.r = r
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return s, nil
}

// The statements prep holds.
const (
	sqlGetTenant      = `SELECT ` + tenantColumns + ` FROM realmhook_tenants WHERE client_key = ?`
	sqlGetProperty    = `SELECT value FROM realmhook_properties WHERE client_key = ? AND key = ?`
	sqlTenantSeq      = `SELECT seq FROM realmhook_tenant_seq WHERE id = 1`
	sqlCheckWritable  = `SELECT state, migration_id FROM realmhook_tenants WHERE client_key = ?`
	sqlInsertProperty = `INSERT INTO realmhook_properties (client_key, key, value) VALUES (?, ?, ?)
		ON CONFLICT (client_key, key) DO NOTHING`
	sqlUpdateProperty = `UPDATE realmhook_properties SET value = ? WHERE client_key = ? AND key = ?`
	sqlDeleteProperty = `DELETE FROM realmhook_properties WHERE client_key = ? AND key = ?`
)

func (s *Store) prepare(ctx context.Context) error {
	for _, p := range []struct {
		db  *sql.DB
		q   string
		dst **sql.Stmt
	}{
		{s.r, sqlGetTenant, &s.prep.getTenant},
		{s.r, sqlGetProperty, &s.prep.getProperty},
		{s.r, sqlTenantSeq, &s.prep.tenantSeq},
		{s.w, sqlCheckWritable, &s.prep.checkWritable},
		{s.w, sqlInsertProperty, &s.prep.insertProperty},
		{s.w, sqlUpdateProperty, &s.prep.updateProperty},
		{s.w, sqlDeleteProperty, &s.prep.deleteProperty},
	} {
		st, err := p.db.PrepareContext(ctx, p.q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.q, err)
		}
		*p.dst = st
	}
	return nil
}

// Backend names the implementation.
func (s *Store) Backend() string { return "sqlite" }

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Ping checks that both pools reach the database.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return s.errorf("ping sqlite %s: %w", s.path, err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return s.errorf("ping sqlite %s: %w", s.path, err)
	}
	return nil
}

// Close closes both pools.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = map[string]*sql.Stmt{}
	s.stmtMu.Unlock()
	for _, st := range []*sql.Stmt{s.prep.getTenant, s.prep.getProperty, s.prep.tenantSeq,
		s.prep.checkWritable, s.prep.insertProperty, s.prep.updateProperty, s.prep.deleteProperty} {
		if st != nil {
			st.Close()
		}
	}
	var errR, errApp error
	if s.r != nil {
		errR = s.r.Close()
	}
	if s.app != nil {
		errApp = s.app.Close()
	}
	return errors.Join(s.w.Close(), errR, errApp)
}

// schemaMigration is one numbered file of migrations/.
type schemaMigration struct {
	version int
	name    string
	sql     string
}

// schemaMigrations returns the embedded migrations in version order.
func schemaMigrations() ([]schemaMigration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []schemaMigration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: name must start with a positive number and '_'", e.Name())
		}
		body, err := fs.ReadFile(migrationFiles, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, schemaMigration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := range ms {
		if ms[i].version != i+1 {
			return nil, fmt.Errorf("migration file %s: expected version %d", ms[i].name, i+1)
		}
	}
	return ms, nil
}

// migrate applies the embedded migrations the database lacks, each in its own
// immediate transaction so that two processes opening one file don't race.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := schemaMigrations()
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	known := ms[len(ms)-1].version
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS realmhook_schema_version (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("schema: create version table: %w", err)
	}
	for _, m := range ms {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			var current int
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM realmhook_schema_version`).Scan(&current); err != nil {
				return fmt.Errorf("read schema version: %w", err)
			}
			if current > known {
				return realmhook.Errorf(realmhook.EINVALID,
					"database schema version %d is newer than this realmhook (%d); upgrade realmhook", current, known)
			}
			if current >= m.version {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO realmhook_schema_version (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, s.now().UnixMicro()); err != nil {
				return fmt.Errorf("record %s: %w", m.name, err)
			}
			s.logger.InfoContext(ctx, "applied schema migration", "version", m.version, "file", m.name)
			return nil
		})
		if err != nil {
			return fmt.Errorf("schema: %w", err)
		}
	}
	return nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE, from the DSN).
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(fmt.Errorf("begin: %w", err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return unavailable(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// unavailable marks err as realmhook.EUNAVAILABLE (realmhook.ErrUnavailable)
// when the database did not answer: it stayed busy or locked past the busy
// timeout (another writer held it, which a later attempt may not meet), or
// the connection was gone.
func unavailable(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return realmhook.Unavailable(err)
		}
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return realmhook.Unavailable(err)
	}
	return err
}

// microsOrNull stores a time as unix microseconds, the zero time as NULL.
func microsOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// timeFromMicros reverses microsOrNull.
func timeFromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// errorf wraps an error as fmt.Errorf does and classifies it as unavailable
// does; after Close every error is EUNAVAILABLE.
func (s *Store) errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if s.closed.Load() {
		return realmhook.Unavailable(err)
	}
	return unavailable(err)
}

// isUniqueViolation reports whether err is a primary key or unique constraint failure.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// isConstraint reports whether err is any constraint failure (NOT NULL,
// CHECK, a foreign key...) or a datatype mismatch (a STRICT table's column,
// a non-integer rowid): the data, not the database, is at fault.
func isConstraint(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT || se.Code()&0xff == sqlite3.SQLITE_MISMATCH)
}
