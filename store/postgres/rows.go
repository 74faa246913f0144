package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// The copy primitives work on any tenant-scoped table the operator names. Its
// name and column names are checked, then always quoted with pgx.Identifier;
// values always travel as parameters or through COPY, never in SQL text.
//
// Order is byte order, as in the SQLite backend, so a cursor taken on one
// backend means the same on the other: text key columns are compared and
// sorted COLLATE "C" — unless their collation already sorts by bytes, in which
// case the clause is left out so the key's index still serves the query.

// tableInfo is what the store knows of a copied table's columns.
type tableInfo struct {
	name   string
	ident  pgx.Identifier
	quoted string // ident.Sanitize()
	cols   []column
	index  map[string]int
	// warned is set once the slow-collation warning for this table was logged.
	warned atomic.Bool
}

// column is one column of a copied table.
type column struct {
	name   string
	quoted string
	typ    string // the (base) type's name, for messages
	oid    uint32 // the (base) type
	kind   kind
	// byteOrder: comparing this column sorts by bytes without COLLATE "C"
	// (not a text type, or a C/POSIX collation).
	byteOrder bool
	// generated: a stored generated column, which COPY may not write.
	generated bool
	typmod    int32 // atttypmod: char(n)'s n+4, numeric(p,s)'s (p<<16|s)+4, or -1
}

// selectExpr is how the column is read: types outside the normalised set
// are read as their text form, which CopyRows turns back into the type.
func (c column) selectExpr() string {
	switch c.kind {
	case kindInt, kindFloat, kindBool, kindText, kindBytea, kindTimestamptz, kindTimestamp, kindDate:
		return c.quoted
	}
	return c.quoted + "::text"
}

// orderExpr is how the column is compared and sorted in key order.
func (c column) orderExpr() string {
	if c.byteOrder {
		return c.quoted
	}
	return c.quoted + ` COLLATE "C"`
}

// columnsQuery reads a table's columns with each one's base type and whether
// its collation already sorts by bytes. pg_database's locale provider column
// only exists from PostgreSQL 15 on, hence to_jsonb.
const columnsQuery = `
WITH db AS (SELECT to_jsonb(d) AS j FROM pg_database d WHERE d.datname = current_database())
SELECT a.attname, bt.typname, bt.oid,
	CASE
	WHEN a.attcollation = 0 THEN true
	WHEN a.attcollation = 100 THEN
		COALESCE(db.j->>'datlocprovider', 'c') = 'b'
		OR (COALESCE(db.j->>'datlocprovider', 'c') = 'c' AND db.j->>'datcollate' IN ('C', 'POSIX'))
	ELSE COALESCE(c.collprovider = 'b' OR (c.collprovider = 'c' AND c.collcollate IN ('C', 'POSIX')), false)
	END,
	a.attgenerated <> '', a.atttypmod
FROM pg_attribute a
JOIN pg_type ty ON ty.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END
LEFT JOIN pg_collation c ON c.oid = a.attcollation
CROSS JOIN db
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`

// checkIdent refuses a name that cannot be a PostgreSQL identifier we quote.
func checkIdent(what, name string) error {
	switch {
	case name == "":
		return realmhook.Errorf(realmhook.EINVALID, "%s is empty", what)
	case len(name) > 63:
		return realmhook.Errorf(realmhook.EINVALID, "%s %q is longer than 63 bytes", what, name)
	case strings.ContainsAny(name, "\"\x00"):
		return realmhook.Errorf(realmhook.EINVALID, "%s %q contains a double quote or NUL", what, name)
	}
	return checkText(what, name, false)
}

// tableIdent splits "schema.table" and checks each part.
func tableIdent(name string) (pgx.Identifier, error) {
	parts := strings.SplitN(name, ".", 2)
	for _, p := range parts {
		if err := checkIdent("table name", p); err != nil {
			return nil, err
		}
	}
	return pgx.Identifier(parts), nil
}

// lookupTable returns the table's columns, from the cache unless refresh.
func (s *Store) lookupTable(ctx context.Context, name string, refresh bool) (*tableInfo, error) {
	ident, err := tableIdent(name)
	if err != nil {
		return nil, err
	}
	if !refresh {
		s.mu.RLock()
		ti := s.tables[name]
		s.mu.RUnlock()
		if ti != nil {
			return ti, nil
		}
	}
	ti := &tableInfo{name: name, ident: ident, quoted: ident.Sanitize(), index: map[string]int{}}
	err = s.run(ctx, true, func(ctx context.Context) error {
		ti.cols = ti.cols[:0]
		rows, err := s.pool.Query(ctx, columnsQuery, ti.quoted)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c column
			if err := rows.Scan(&c.name, &c.typ, &c.oid, &c.byteOrder, &c.generated, &c.typmod); err != nil {
				return err
			}
			c.quoted = pgx.Identifier{c.name}.Sanitize()
			c.kind = kindOf(c.typ)
			ti.cols = append(ti.cols, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", name, dataError(err))
	}
	if len(ti.cols) == 0 {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "table %s not found", name)
	}
	for i, c := range ti.cols {
		ti.index[c.name] = i
	}
	s.mu.Lock()
	s.tables[name] = ti
	s.mu.Unlock()
	return ti, nil
}

// columns returns the named columns, EINVALID naming one the table lacks.
func (ti *tableInfo) columns(names []string) ([]column, error) {
	if len(names) == 0 {
		return nil, realmhook.Errorf(realmhook.EINVALID, "no columns given for table %s", ti.name)
	}
	out := make([]column, len(names))
	for i, n := range names {
		if err := checkIdent("column name", n); err != nil {
			return nil, err
		}
		j, ok := ti.index[n]
		if !ok {
			return nil, realmhook.Errorf(realmhook.EINVALID, "table %s has no column %q", ti.name, n)
		}
		out[i] = ti.cols[j]
	}
	return out, nil
}

// tenantTable is a copied table resolved against the database.
type tenantTable struct {
	*tableInfo
	tenant column
	keys   []column
}

// resolve checks t against the database's table.
func (s *Store) resolve(ctx context.Context, t store.Table) (*tenantTable, error) {
	if err := checkIdent("tenant column", t.TenantColumn); err != nil {
		return nil, err
	}
	if len(t.Key) == 0 {
		return nil, realmhook.Errorf(realmhook.EINVALID, "table %s has no key columns", t.Name)
	}
	ti, err := s.lookupTable(ctx, t.Name, false)
	if err != nil {
		return nil, err
	}
	tenant, err := ti.columns([]string{t.TenantColumn})
	if err != nil {
		return nil, err
	}
	keys, err := ti.columns(t.Key)
	if err != nil {
		return nil, err
	}
	tt := &tenantTable{tableInfo: ti, tenant: tenant[0], keys: keys}
	for _, k := range keys {
		if !k.byteOrder && ti.warned.CompareAndSwap(false, true) {
			s.logger.Warn("key column's collation does not sort by bytes; keyset reads will sort rather than use the index (declare it COLLATE \"C\")",
				"table", t.Name, "column", k.name)
		}
	}
	return tt, nil
}

// where returns "tenant = $1 [AND (k1, k2) > ($2, $3)]" and its arguments.
func (tt *tenantTable) where(clientKey string, after store.Row) (string, []any, error) {
	tenantArg, err := toColumn(tt.tenant, clientKey)
	if err != nil {
		return "", nil, err
	}
	sql := tt.tenant.quoted + " = $1"
	args := []any{tenantArg}
	if after == nil {
		return sql, args, nil
	}
	if len(after) != len(tt.keys) {
		return "", nil, realmhook.Errorf(realmhook.EINVALID, "cursor has %d values, table %s has %d key columns", len(after), tt.name, len(tt.keys))
	}
	lhs := make([]string, len(tt.keys))
	rhs := make([]string, len(tt.keys))
	for i, k := range tt.keys {
		v, err := toColumn(k, after[i])
		if err != nil {
			return "", nil, err
		}
		if v == nil {
			return "", nil, realmhook.Errorf(realmhook.EINVALID, "cursor value for key column %s is NULL", k.name)
		}
		args = append(args, v)
		lhs[i] = k.orderExpr()
		rhs[i] = "$" + strconv.Itoa(len(args))
	}
	return sql + " AND (" + strings.Join(lhs, ", ") + ") > (" + strings.Join(rhs, ", ") + ")", args, nil
}

func (tt *tenantTable) orderBy() string {
	exprs := make([]string, len(tt.keys))
	for i, k := range tt.keys {
		exprs[i] = k.orderExpr()
	}
	return strings.Join(exprs, ", ")
}

func selectList(cols []column) string {
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = c.selectExpr()
	}
	return strings.Join(exprs, ", ")
}

// Columns returns a table's column names in table order; ENOTFOUND if the
// table does not exist. It refreshes the store's knowledge of the table.
func (s *Store) Columns(ctx context.Context, table string) ([]string, error) {
	ti, err := s.lookupTable(ctx, table, true)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ti.cols))
	for i, c := range ti.cols {
		names[i] = c.name
	}
	return names, nil
}

// ReadRows returns up to limit of the tenant's rows with key greater than
// after, in key order (byte order for text), using the key's index.
func (s *Store) ReadRows(ctx context.Context, t store.Table, columns []string, clientKey string, after store.Row, limit int) ([]store.Row, error) {
	return s.readRows(ctx, s.onPool(), t, columns, clientKey, after, limit)
}

func (s *Store) readRows(ctx context.Context, on reads, t store.Table, columns []string, clientKey string, after store.Row, limit int) ([]store.Row, error) {
	if limit <= 0 {
		return nil, realmhook.Errorf(realmhook.EINVALID, "limit %d must be positive", limit)
	}
	tt, err := s.resolve(ctx, t)
	if err != nil {
		return nil, err
	}
	cols, err := tt.columns(columns)
	if err != nil {
		return nil, err
	}
	for _, k := range tt.keys {
		if _, ok := indexOf(cols, k.name); !ok {
			return nil, realmhook.Errorf(realmhook.EINVALID, "key column %s of table %s is not among the columns read", k.name, t.Name)
		}
	}
	where, args, err := tt.where(clientKey, after)
	if err != nil {
		return nil, err
	}
	args = append(args, limit)
	sql := "SELECT " + selectList(cols) + " FROM " + tt.quoted + " WHERE " + where +
		" ORDER BY " + tt.orderBy() + " LIMIT $" + strconv.Itoa(len(args))

	var out []store.Row
	err = on.run(ctx, func(ctx context.Context) error {
		out = make([]store.Row, 0, min(limit, 4096))
		rows, err := on.q.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		sc := newRowScanner(cols)
		for rows.Next() {
			r, err := sc.scan(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read rows of %s: %w", t.Name, dataError(err))
	}
	return out, nil
}

// ScanRows streams the tenant's rows through fn from one query, in no
// particular order, in one Row slice reused for every row.
func (s *Store) ScanRows(ctx context.Context, t store.Table, columns []string, clientKey string, fn func(store.Row) error) error {
	return s.scanRows(ctx, s.onPool(), t, columns, clientKey, fn)
}

func (s *Store) scanRows(ctx context.Context, on reads, t store.Table, columns []string, clientKey string, fn func(store.Row) error) error {
	tt, err := s.resolve(ctx, t)
	if err != nil {
		return err
	}
	cols, err := tt.columns(columns)
	if err != nil {
		return err
	}
	where, args, err := tt.where(clientKey, nil)
	if err != nil {
		return err
	}
	sql := "SELECT " + selectList(cols) + " FROM " + tt.quoted + " WHERE " + where
	var fnErr error
	err = on.run(ctx, func(ctx context.Context) error {
		rows, err := on.q.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		sc := newRowScanner(cols)
		r := make(store.Row, len(cols)) // fn may not keep it: one serves every row
		delivered := false
		for rows.Next() {
			if err := sc.scanInto(rows, r); err != nil {
				return err
			}
			delivered = true
			if fnErr = fn(r); fnErr != nil {
				return &finalError{fnErr}
			}
		}
		if err := rows.Err(); err != nil && delivered {
			// fn has seen rows: a second pass would repeat them.
			return &finalError{err}
		} else if err != nil {
			return err
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("scan rows of %s: %w", t.Name, dataError(err))
	}
	return nil
}

// CountRows counts the tenant's rows.
func (s *Store) CountRows(ctx context.Context, t store.Table, clientKey string) (int64, error) {
	return s.countRows(ctx, s.onPool(), t, clientKey)
}

func (s *Store) countRows(ctx context.Context, on reads, t store.Table, clientKey string) (int64, error) {
	tt, err := s.resolve(ctx, t)
	if err != nil {
		return 0, err
	}
	where, args, err := tt.where(clientKey, nil)
	if err != nil {
		return 0, err
	}
	var n int64
	err = on.run(ctx, func(ctx context.Context) error {
		return on.q.QueryRow(ctx, "SELECT count(*) FROM "+tt.quoted+" WHERE "+where, args...).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("count rows of %s: %w", t.Name, dataError(err))
	}
	return n, nil
}

// CopyRows streams every batch next hands out through one COPY: one
// statement, so all or none land. Values are converted to the columns' types
// as they go (a time read from SQLite as text into a timestamptz column, an
// int64 into an int4); a bad one ends the COPY with EINVALID naming its row
// and column. A duplicate key is ECONFLICT. A table with a column of a type
// outside the natively encoded ones (numeric, uuid, json, ranges, money,
// intervals, arrays, enums, an extension's types...) is copied in COPY's text
// format instead of binary, each such value as its text, which PostgreSQL
// reads with the type's own input function. Generated columns' values are
// left out, and the COPY runs with session_replication_role = replica
// where the role may set it, so that the table's triggers do not fire.
func (s *Store) CopyRows(ctx context.Context, t store.Table, columns []string, next func() ([]store.Row, error)) (int64, error) {
	ti, err := s.lookupTable(ctx, t.Name, false)
	if err != nil {
		return 0, err
	}
	cols, err := ti.columns(columns)
	if err != nil {
		return 0, err
	}
	var write []int // positions of the columns COPY writes
	var names []string
	text := false // a column pgx cannot encode from every form its values come in
	for i, c := range cols {
		if !c.generated {
			write = append(write, i)
			names = append(names, c.name)
			text = text || !c.kind.native()
		}
	}
	replica := s.mayQuietTriggers(ctx)
	var src *copySource
	var n int64
	err = s.run(ctx, false, func(ctx context.Context) error {
		src = &copySource{table: t.Name, cols: cols, write: write, keyAt: keyPositions(t, columns), next: next, vals: make([]any, len(write))}
		return s.inReplicaTx(ctx, replica, func(tx pgx.Tx) error {
			var err error
			if text {
				n, err = copyText(ctx, tx, ti.quoted, names, src)
			} else {
				n, err = tx.CopyFrom(ctx, ti.ident, names, src)
			}
			if err != nil && src.pulled {
				return &finalError{err}
			}
			return err
		})
	})
	switch {
	case src != nil && src.nextErr != nil:
		return 0, src.nextErr
	case src != nil && src.rowErr != nil:
		return 0, fmt.Errorf("write rows to %s: %w", t.Name, src.rowErr)
	case err != nil:
		return 0, fmt.Errorf("write rows to %s: %w", t.Name, rowError(t.Name, err))
	}
	return n, nil
}

// inReplicaTx runs fn in a transaction, with session_replication_role =
// replica (user triggers and foreign key checks quiet) when replica is set.
// A failed commit is final: the server may have committed.
func (s *Store) inReplicaTx(ctx context.Context, replica bool, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if replica {
		if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
			return err
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return &finalError{fmt.Errorf("commit: %w", err)}
	}
	return nil
}

// mayQuietTriggers reports whether this database's role may set
// session_replication_role (a superuser, or one granted SET on it), finding
// out once.
func (s *Store) mayQuietTriggers(ctx context.Context) bool {
	if v := s.replica.Load(); v != 0 {
		return v > 0
	}
	err := s.run(ctx, true, func(ctx context.Context) error {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		_, err = tx.Exec(ctx, "SET LOCAL session_replication_role = replica")
		return err
	})
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		s.replica.Store(1)
		return true
	case errors.As(err, &pgErr):
		s.replica.Store(-1)
	}
	return false
}

// triggersQuery lists a table's user triggers on INSERT (bit 4 of tgtype)
// with how they are enabled: O fires in the normal role, R only in replica,
// A always, D never.
const triggersQuery = `
SELECT tgname, tgenabled FROM pg_trigger
WHERE tgrelid = to_regclass($1) AND NOT tgisinternal AND tgtype & 4 <> 0
ORDER BY tgname`

// Triggers returns the table's user triggers that fire for copied rows:
// ENABLE ALWAYS ones, and every enabled one when the role may not set
// session_replication_role. Deletes (trim, rollback, purge) run in the
// normal role, so that the app's ON DELETE actions still apply.
func (s *Store) Triggers(ctx context.Context, table string) ([]string, error) {
	ident, err := tableIdent(table)
	if err != nil {
		return nil, err
	}
	replica := s.mayQuietTriggers(ctx)
	var out []string
	err = s.run(ctx, true, func(ctx context.Context) error {
		out = out[:0]
		rows, err := s.pool.Query(ctx, triggersQuery, ident.Sanitize())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name, enabled string
			if err := rows.Scan(&name, &enabled); err != nil {
				return err
			}
			if enabled == "A" || (!replica && enabled == "O") {
				out = append(out, name)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("triggers of %s: %w", table, dataError(err))
	}
	return out, nil
}

// sequencesQuery lists the sequences behind a table's serial and identity
// columns.
const sequencesQuery = `
SELECT a.attname, pg_get_serial_sequence($1, a.attname)
FROM pg_attribute a
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
	AND pg_get_serial_sequence($1, a.attname) IS NOT NULL
ORDER BY a.attnum`

// AdvanceSequences sets each sequence behind table's serial and identity
// columns to the column's largest value (of every tenant: the sequence is
// the table's), unless it is past it already.
func (s *Store) AdvanceSequences(ctx context.Context, table string) error {
	ident, err := tableIdent(table)
	if err != nil {
		return err
	}
	type seq struct{ col, name string }
	var seqs []seq
	err = s.run(ctx, true, func(ctx context.Context) error {
		seqs = seqs[:0]
		rows, err := s.pool.Query(ctx, sequencesQuery, ident.Sanitize())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var q seq
			if err := rows.Scan(&q.col, &q.name); err != nil {
				return err
			}
			seqs = append(seqs, q)
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("sequences of %s: %w", table, dataError(err))
	}
	for _, q := range seqs {
		sql := `SELECT setval($1::regclass, m) FROM (SELECT max(` + pgx.Identifier{q.col}.Sanitize() + `)::bigint AS m FROM ` + ident.Sanitize() + `) x
			WHERE m IS NOT NULL AND m > COALESCE(pg_sequence_last_value($1::regclass), m - 1)`
		err := s.run(ctx, true, func(ctx context.Context) error {
			_, err := s.pool.Exec(ctx, sql, q.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("advance sequence %s of %s.%s: %w", q.name, table, q.col, dataError(err))
		}
	}
	return nil
}

// rowError is dataError, and a store.RowError naming the table (and the
// column, when the server names one) if the server refused a row's data.
func rowError(table string, err error) error {
	derr := dataError(err)
	if derr == err {
		return err
	}
	re := &store.RowError{Table: table, Err: derr}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		re.Column = pgErr.ColumnName
	}
	return re
}

// keyPositions is where each of t's key columns sits among columns (-1 for
// one not among them).
func keyPositions(t store.Table, columns []string) []int {
	at := make([]int, len(t.Key))
	for i, k := range t.Key {
		at[i] = slices.Index(columns, k)
	}
	return at
}

// keyOf is r's key, for messages.
func keyOf(r store.Row, at []int) store.Row {
	k := make(store.Row, len(at))
	for i, p := range at {
		if p >= 0 && p < len(r) {
			k[i] = r[p]
		}
	}
	return k
}

// copySource is a pgx.CopyFromSource over a stream of batches. pgx reads it
// from a goroutine of its own while the COPY goes on, encoding each row's
// values before asking for the next, so the values slice is reused. Errors
// are kept here because pgx reports an aborted COPY as the server's
// "COPY from stdin failed", without the reason's code.
type copySource struct {
	table   string
	cols    []column
	write   []int // the positions in a row of the values COPY writes
	keyAt   []int // t.Key's positions in cols
	next    func() ([]store.Row, error)
	batch   []store.Row
	at      int   // the current row is batch[at-1]
	rows    int64 // rows handed to pgx, for messages
	vals    []any
	pulled  bool // next was called: the stream cannot be replayed
	done    bool
	nextErr error // next's, returned as is
	rowErr  error // a value that cannot be stored
}

func (c *copySource) Next() bool {
	for c.at >= len(c.batch) {
		if c.done {
			return false
		}
		c.pulled = true
		b, err := c.next()
		if err != nil {
			c.nextErr, c.done = err, true
			return false
		}
		if len(b) == 0 {
			c.batch, c.done = nil, true
			return false
		}
		c.batch, c.at = b, 0
	}
	c.at++
	return true
}

func (c *copySource) Values() ([]any, error) {
	r := c.batch[c.at-1]
	c.rows++
	if len(r) != len(c.cols) {
		c.rowErr = realmhook.Errorf(realmhook.EINVALID, "row %d has %d values for %d columns", c.rows-1, len(r), len(c.cols))
		return nil, c.rowErr
	}
	for w, j := range c.write {
		v := r[j]
		val, err := toColumn(c.cols[j], v)
		if err != nil {
			c.rowErr = &store.RowError{Table: c.table, Column: c.cols[j].name, Key: keyOf(r, c.keyAt), Err: dataError(err)}
			return nil, c.rowErr
		}
		c.vals[w] = val
	}
	return c.vals, nil
}

func (c *copySource) Err() error {
	if c.nextErr != nil {
		return c.nextErr
	}
	return c.rowErr
}

// DeleteRows deletes the tenant's rows with key greater than after (all of
// them when after is nil) and returns how many.
func (s *Store) DeleteRows(ctx context.Context, t store.Table, clientKey string, after store.Row) (int64, error) {
	tt, err := s.resolve(ctx, t)
	if err != nil {
		return 0, err
	}
	where, args, err := tt.where(clientKey, after)
	if err != nil {
		return 0, err
	}
	var n int64
	// Not idempotent for the count: a delete that ran before the connection
	// dropped would be reported as 0 rows by a retry.
	err = s.run(ctx, false, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, "DELETE FROM "+tt.quoted+" WHERE "+where, args...)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete rows of %s: %w", t.Name, dataError(err))
	}
	return n, nil
}

func indexOf(cols []column, name string) (int, bool) {
	for i, c := range cols {
		if c.name == name {
			return i, true
		}
	}
	return -1, false
}

// foreignKeysQuery lists the tables a table's foreign keys reference, named
// as the operator would write them: bare when the search path finds them.
const foreignKeysQuery = `
SELECT CASE WHEN pg_table_is_visible(c.confrelid) THEN p.relname::text ELSE n.nspname || '.' || p.relname END,
	c.condeferrable
FROM pg_constraint c
JOIN pg_class p ON p.oid = c.confrelid
JOIN pg_namespace n ON n.oid = p.relnamespace
WHERE c.contype = 'f' AND c.conrelid = to_regclass($1)
ORDER BY c.conname`

// ForeignKeys returns the foreign keys declared on table, from pg_constraint.
func (s *Store) ForeignKeys(ctx context.Context, table string) ([]store.ForeignKey, error) {
	ident, err := tableIdent(table)
	if err != nil {
		return nil, err
	}
	var out []store.ForeignKey
	err = s.run(ctx, true, func(ctx context.Context) error {
		out = out[:0]
		rows, err := s.pool.Query(ctx, foreignKeysQuery, ident.Sanitize())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			fk := store.ForeignKey{Child: table}
			if err := rows.Scan(&fk.Parent, &fk.Deferrable); err != nil {
				return err
			}
			out = append(out, fk)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("foreign keys of %s: %w", table, dataError(err))
	}
	return out, nil
}

// uniqueKeysQuery lists the column names of every valid unique index of a
// table that has neither a predicate nor expressions (the primary key is one).
const uniqueKeysQuery = `
SELECT array_agg(a.attname::text ORDER BY k.ord)
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indisvalid
	AND i.indpred IS NULL AND i.indexprs IS NULL
GROUP BY i.indexrelid`

// CheckTable checks that t exists with its tenant and key columns and a
// unique key within them.
func (s *Store) CheckTable(ctx context.Context, t store.Table) error {
	if len(t.Key) == 0 {
		return realmhook.Errorf(realmhook.EINVALID, "table %s: no key columns configured", t.Name)
	}
	ti, err := s.lookupTable(ctx, t.Name, true)
	if err != nil {
		return err
	}
	if _, err := ti.columns(append([]string{t.TenantColumn}, t.Key...)); err != nil {
		return err
	}
	var keys [][]string
	err = s.run(ctx, true, func(ctx context.Context) error {
		keys = keys[:0]
		rows, err := s.pool.Query(ctx, uniqueKeysQuery, ti.quoted)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var cols []string
			if err := rows.Scan(&cols); err != nil {
				return err
			}
			keys = append(keys, cols)
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("unique indexes of %s: %w", t.Name, err)
	}
	return store.CheckUniqueKey(t, keys)
}
