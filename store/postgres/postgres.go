// Package postgres implements store.Store on one PostgreSQL database per realm,
// for the regional shape, with pgx/v5; any number of replicas share the database.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// Options tune a Store.
type Options struct {
	// MaxConns caps the pool; 0 keeps the URL's pool_max_conns or pgx's default.
	MaxConns int32
	// Logger receives schema and connection messages; slog.Default() if nil.
	Logger *slog.Logger
	// Now is the clock for migration event times; time.Now if nil.
	Now func() time.Time
	// ConnectTimeout bounds how long Open waits for the database to accept a
	// first connection; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
}

// DefaultConnectTimeout is how long Open waits, by default, for a database
// that does not accept connections yet: long enough for an app and its
// database to be started together.
const DefaultConnectTimeout = 30 * time.Second

// Store is one realm's PostgreSQL database. It is safe for concurrent use, and
// any number of processes may share one database.
type Store struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
	now    func() time.Time

	mu     sync.RWMutex
	tables map[string]*tableInfo // column types of copied tables, by name
	// replica is 1 once the role was seen to may set
	// session_replication_role, -1 once it was refused, 0 before.
	replica atomic.Int32

	appOnce sync.Once
	app     *sql.DB // database/sql over pool, from SQLDB

	// closed is set by Close: every later call fails, as EUNAVAILABLE.
	closed atomic.Bool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or key=value DSN)
// and brings its schema up to date. It fails if the database's schema is newer
// than this binary knows (ErrSchemaNewer).
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, realmhook.Errorf(realmhook.EINVALID, "postgres database URL is not valid")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", where(cfg), err)
	}
	s := &Store{pool: pool, logger: opts.Logger, now: opts.Now, tables: map[string]*tableInfo{}}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if err := s.waitConnect(ctx, where(cfg), opts.ConnectTimeout); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where(cfg), err)
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where(cfg), err)
	}
	return s, nil
}

// waitConnect waits until the database accepts a connection, retrying with
// backoff for up to timeout, so that an app and its database can start
// together. A server that answers with an error waiting will not fix (a wrong
// password, no such database) fails at once. This is not "connection lost":
// nothing was connected yet.
func (s *Store) waitConnect(ctx context.Context, where string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := s.pool.Ping(ctx)
		if err == nil {
			if attempt > 1 {
				s.logger.Info("postgres: connected", "database", where, "attempts", attempt)
			}
			return nil
		}
		if !retryConnect(err) || ctx.Err() != nil {
			return fmt.Errorf("cannot connect (waited up to %s): %w", timeout, err)
		}
		s.logger.Warn("postgres: cannot connect; retrying", "database", where, "attempt", attempt, "retry_in", delay.String(), "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot connect (waited %s): %w", timeout, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// retryConnect reports whether a failed first connection may succeed later:
// the server is not there yet, or is starting up or full; not when it
// answered with a refusal of its own.
func retryConnect(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P03", "53300": // cannot_connect_now (starting up), too_many_connections
			return true
		}
		return false
	}
	return true
}

// where names a database for messages without its password.
func where(cfg *pgxpool.Config) string {
	return fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

// Backend returns "postgres".
func (s *Store) Backend() string { return "postgres" }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return realmhook.Unavailable(fmt.Errorf("ping postgres: %w", err))
	}
	return nil
}

// Close closes every connection of the pool.
func (s *Store) Close() error {
	s.closed.Store(true)
	var err error
	if s.app != nil {
		err = s.app.Close()
	}
	s.pool.Close()
	return err
}

// Pool returns the store's connection pool, for tests and tools that need to
// run their own SQL (creating an app's tables, say) on the same database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Retrying after a lost connection: a restarted or failed-over server leaves
// every pooled connection dead, and the first use of each would fail. These
// bound how long an operation keeps trying new connections.
var retryBackoff = []time.Duration{0, 50 * time.Millisecond, 250 * time.Millisecond, time.Second}

// run calls fn, and calls it again on a fresh connection when it failed because
// the connection was lost. Only a statement the server never ran is retried,
// unless idempotent says running it twice does no harm. An error that shows
// the database did not answer (a connection lost or never made, the store
// closed) comes back as realmhook.EUNAVAILABLE.
func (s *Store) run(ctx context.Context, idempotent bool, fn func(ctx context.Context) error) error {
	var err error
	for attempt, wait := range retryBackoff {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return err
			case <-t.C:
			}
		}
		err = fn(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if s.closed.Load() {
			return realmhook.Unavailable(err)
		}
		if !notExecuted(err) && !(idempotent && connectionLost(err)) || attempt == len(retryBackoff)-1 {
			return unavailable(err)
		}
		// The other pooled connections are most likely dead too.
		s.pool.Reset()
		s.logger.Warn("postgres connection lost; retrying", "attempt", attempt+1, "err", err)
	}
	return err
}

// inTx runs fn in a transaction, under run's retry rules. A failed commit is
// never retried: the server may have committed.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.run(ctx, false, func(ctx context.Context) error {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		if err := fn(tx); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return &finalError{fmt.Errorf("commit: %w", err)}
		}
		return nil
	})
}

// unavailable marks err as realmhook.EUNAVAILABLE (realmhook.ErrUnavailable)
// when it is a lost connection or a server going away, which a later attempt
// may not meet.
func unavailable(err error) error {
	if connectionLost(err) {
		return realmhook.Unavailable(err)
	}
	return err
}

// finalError marks an error run must not retry: a failed COMMIT, whose outcome
// is unknown, or a stream that already handed rows to its caller.
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }
func (e *finalError) Unwrap() error { return e.err }

// notExecuted reports whether err shows that the server did not run the
// statement: the connection failed before anything was sent, none could be
// made, or the server had ended the session (shutdown, restart) first.
func notExecuted(err error) bool {
	var fe *finalError
	if errors.As(err, &fe) {
		return false
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		}
	}
	return false
}

// connectionLost reports whether err is a broken connection, whether or not
// the statement ran.
func connectionLost(err error) bool {
	if notExecuted(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception
	}
	var netErr net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &netErr) || errors.Is(err, net.ErrClosed)
}

// checkText refuses what a PostgreSQL TEXT value cannot hold (NUL bytes,
// invalid UTF-8), and an empty value unless allowed, as EINVALID naming what.
func checkText(what, v string, allowEmpty bool) error {
	switch {
	case v == "" && !allowEmpty:
		return realmhook.Errorf(realmhook.EINVALID, "%s is empty", what)
	case !utf8.ValidString(v):
		return realmhook.Errorf(realmhook.EINVALID, "%s is not valid UTF-8", what)
	case strings.IndexByte(v, 0) >= 0:
		return realmhook.Errorf(realmhook.EINVALID, "%s contains a NUL byte", what)
	}
	return nil
}

// dataError turns the server's complaints about the data into domain
// errors, keeping the server's message and what it names: a duplicate key is
// ECONFLICT; any other data exception (class 22), integrity violation (23)
// or statement the schema refuses (42: a missing column, a type mismatch,
// a privilege) is EINVALID, which a retry would meet again. So is a
// statement cancelled by a timeout (57014) while the caller still waits: it
// would time out again.
func dataError(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	msg := pgErr.Message
	for _, f := range []struct{ name, v string }{
		{"table", pgErr.TableName}, {"column", pgErr.ColumnName}, {"constraint", pgErr.ConstraintName}, {"detail", pgErr.Detail},
	} {
		if f.v != "" {
			msg += "; " + f.name + " " + f.v
		}
	}
	switch {
	case pgErr.Code == "23505":
		return &realmhook.Error{Code: realmhook.ECONFLICT, Message: msg}
	case strings.HasPrefix(pgErr.Code, "22"), strings.HasPrefix(pgErr.Code, "23"), strings.HasPrefix(pgErr.Code, "42"),
		pgErr.Code == "57014":
		return &realmhook.Error{Code: realmhook.EINVALID, Message: msg + " (SQLSTATE " + pgErr.Code + ")"}
	}
	return err
}
