package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// timeLayout is how CopyRows stores a time.Time: UTC, fixed width so that text
// order is time order, microseconds like PostgreSQL, and a form both SQLite's
// date functions and the driver's time parsing understand.
const timeLayout = "2006-01-02 15:04:05.000000-07:00"

// maxVariables is SQLite's default SQLITE_MAX_VARIABLE_NUMBER (since 3.32).
const maxVariables = 32766

// maxRowsPerInsert bounds one multi-row INSERT; beyond a few hundred rows
// longer statements stop paying off.
const maxRowsPerInsert = 500

// tableInfo is a table's columns in table order with their declared types.
type tableInfo struct {
	columns   []string
	types     map[string]string // declared type, as written in CREATE TABLE
	generated map[string]bool   // generated columns, which INSERT may not write
}

// validIdent rejects names that quoting cannot make safe.
func validIdent(what, name string) error {
	if name == "" {
		return realmhook.Errorf(realmhook.EINVALID, "%s name is empty", what)
	}
	if strings.ContainsAny(name, "\"\x00") || !utf8.ValidString(name) {
		return realmhook.Errorf(realmhook.EINVALID, "%s name %q must not contain double quotes, NUL or invalid UTF-8", what, name)
	}
	return nil
}

func quote(name string) string { return `"` + name + `"` }

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote(n)
	}
	return strings.Join(q, ", ")
}

// loadTable reads a table's columns from the database and caches them.
func (s *Store) loadTable(ctx context.Context, name string) (*tableInfo, error) {
	if err := validIdent("table", name); err != nil {
		return nil, err
	}
	// table_xinfo, unlike table_info, lists generated columns (hidden 2:
	// virtual, 3: stored); hidden 1 is a virtual table's hidden column.
	rows, err := s.r.QueryContext(ctx, `SELECT name, type, hidden FROM pragma_table_xinfo(?) WHERE hidden <> 1 ORDER BY cid`, name)
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", name, err)
	}
	defer rows.Close()
	info := &tableInfo{types: map[string]string{}, generated: map[string]bool{}}
	for rows.Next() {
		var col, typ string
		var hidden int
		if err := rows.Scan(&col, &typ, &hidden); err != nil {
			return nil, fmt.Errorf("columns of %s: %w", name, err)
		}
		info.columns = append(info.columns, col)
		info.types[col] = typ
		if hidden != 0 {
			info.generated[col] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("columns of %s: %w", name, err)
	}
	if len(info.columns) == 0 {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "table %q does not exist", name)
	}
	s.mu.Lock()
	s.tables[name] = info
	s.mu.Unlock()
	return info, nil
}

// table returns a table's cached description, reloading it once if a needed
// column is missing (the app may have altered the table since). Checking
// columns here matters: SQLite reads an unknown double-quoted identifier as a
// string literal instead of failing.
func (s *Store) table(ctx context.Context, name string, need ...[]string) (*tableInfo, error) {
	if err := validIdent("table", name); err != nil {
		return nil, err
	}
	for _, cols := range need {
		for _, c := range cols {
			if err := validIdent("column", c); err != nil {
				return nil, err
			}
		}
	}
	s.mu.RLock()
	info := s.tables[name]
	s.mu.RUnlock()
	for attempt := 0; ; attempt++ {
		if info == nil {
			var err error
			if info, err = s.loadTable(ctx, name); err != nil {
				return nil, err
			}
		}
		missing := ""
		for _, cols := range need {
			for _, c := range cols {
				if _, ok := info.types[c]; !ok && missing == "" {
					missing = c
				}
			}
		}
		if missing == "" {
			return info, nil
		}
		if attempt > 0 {
			return nil, realmhook.Errorf(realmhook.EINVALID, "table %q has no column %q", name, missing)
		}
		info = nil
	}
}

// Columns returns a table's column names in table order.
func (s *Store) Columns(ctx context.Context, table string) ([]string, error) {
	info, err := s.loadTable(ctx, table)
	if err != nil {
		return nil, err
	}
	return slices.Clone(info.columns), nil
}

// checkKey validates a table's key and a cursor on it.
func checkKey(t store.Table, after store.Row) error {
	if len(t.Key) == 0 {
		return realmhook.Errorf(realmhook.EINVALID, "table %q has no key columns", t.Name)
	}
	if after != nil && len(after) != len(t.Key) {
		return realmhook.Errorf(realmhook.EINVALID, "cursor for table %q has %d values, want %d (one per key column)", t.Name, len(after), len(t.Key))
	}
	return nil
}

// keyAfter is the keyset condition "key > cursor" as a row-value comparison,
// which SQLite answers from the primary key index.
func keyAfter(keys []string) string {
	if len(keys) == 1 {
		return quote(keys[0]) + " > ?"
	}
	return "(" + quoteList(keys) + ") > (?" + strings.Repeat(", ?", len(keys)-1) + ")"
}

// ReadRows returns up to limit of the tenant's rows with key after `after`, by key.
func (s *Store) ReadRows(ctx context.Context, t store.Table, columns []string, clientKey string, after store.Row, limit int) ([]store.Row, error) {
	return s.readRows(ctx, s.r, t, columns, clientKey, after, limit)
}

func (s *Store) readRows(ctx context.Context, db queryer, t store.Table, columns []string, clientKey string, after store.Row, limit int) ([]store.Row, error) {
	if err := checkKey(t, after); err != nil {
		return nil, err
	}
	if err := checkColumns(t, columns); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, realmhook.Errorf(realmhook.EINVALID, "read %s: limit must be positive, got %d", t.Name, limit)
	}
	for _, k := range t.Key {
		if !slices.Contains(columns, k) {
			return nil, realmhook.Errorf(realmhook.EINVALID, "read %s: key column %q must be among the columns read", t.Name, k)
		}
	}
	_, err := s.table(ctx, t.Name, columns, t.Key, []string{t.TenantColumn})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", t.Name, err)
	}
	q := "SELECT " + rawList(columns) + " FROM " + quote(t.Name) + " WHERE " + quote(t.TenantColumn) + " = ?"
	args := make([]any, 0, 2+len(after))
	args = append(args, clientKey)
	if after != nil {
		q += " AND " + keyAfter(t.Key)
		for i, v := range after {
			sv, err := storageValue(v)
			if err != nil {
				return nil, fmt.Errorf("read %s: cursor %s: %w", t.Name, t.Key[i], err)
			}
			args = append(args, sv)
		}
	}
	q += " ORDER BY " + quoteList(t.Key) + " LIMIT ?"
	args = append(args, limit)

	out := make([]store.Row, 0, min(limit, 1024))
	err = s.query(ctx, db, columns, q, args, false, func(r store.Row) error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", t.Name, unavailable(err))
	}
	return out, nil
}

// ScanRows calls fn for every row of the tenant, in one Row slice reused for
// every row, and stops at fn's first error, which it returns as is.
func (s *Store) ScanRows(ctx context.Context, t store.Table, columns []string, clientKey string, fn func(store.Row) error) error {
	return s.scanRows(ctx, s.r, t, columns, clientKey, fn)
}

func (s *Store) scanRows(ctx context.Context, db queryer, t store.Table, columns []string, clientKey string, fn func(store.Row) error) error {
	if err := checkColumns(t, columns); err != nil {
		return err
	}
	_, err := s.table(ctx, t.Name, columns, []string{t.TenantColumn})
	if err != nil {
		return fmt.Errorf("scan %s: %w", t.Name, err)
	}
	q := "SELECT " + rawList(columns) + " FROM " + quote(t.Name) + " WHERE " + quote(t.TenantColumn) + " = ?"
	var fnErr error
	err = s.query(ctx, db, columns, q, []any{clientKey}, true, func(r store.Row) error {
		fnErr = fn(r)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	} else if err != nil {
		return fmt.Errorf("scan %s: %w", t.Name, unavailable(err))
	}
	return nil
}

func checkColumns(t store.Table, columns []string) error {
	if len(columns) == 0 {
		return realmhook.Errorf(realmhook.EINVALID, "no columns given for table %q", t.Name)
	}
	return nil
}

// queryer is what reads run on: the read pool, or a snapshot's transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// query runs a query on db and hands each row to fn, every
// value as SQLite stores it (see rawList). Each row is a fresh slice, so fn
// may keep it, unless reuse: then one slice serves every row.
func (s *Store) query(ctx context.Context, db queryer, columns []string, q string, args []any, reuse bool, fn func(store.Row) error) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	ptrs := make([]any, len(columns))
	r := make(store.Row, len(columns))
	for i := range r {
		ptrs[i] = &r[i]
	}
	// Rows the caller keeps are cut from one block of values at a time, not
	// allocated one by one: a copy reads thousands per batch.
	var slab []any
	for rows.Next() {
		if !reuse {
			if len(slab) < len(columns) {
				slab = make([]any, slabRows*len(columns))
			}
			r, slab = store.Row(slab[:len(columns):len(columns)]), slab[len(columns):]
			for i := range r {
				ptrs[i] = &r[i]
			}
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, v := range r {
			if b, ok := v.([]byte); ok && b == nil {
				// The driver hands back an empty BLOB as a nil slice; NULL is nil any.
				r[i] = []byte{}
			}
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// rawList is the select list of columns read as stored: each one behind a
// unary +, a no-op on any value that leaves the result column without a
// declared type, so the driver hands back the storage class (INTEGER, REAL,
// TEXT, BLOB) as it is instead of parsing the text of a DATE or TIMESTAMP
// column into a time. A copy between SQLite databases then moves every
// value's class and bytes unchanged.
func rawList(columns []string) string {
	q := make([]string, len(columns))
	for i, c := range columns {
		q[i] = "+" + quote(c)
	}
	return strings.Join(q, ", ")
}

// slabRows is how many rows' values query allocates at once.
const slabRows = 256

// CountRows counts the tenant's rows.
func (s *Store) CountRows(ctx context.Context, t store.Table, clientKey string) (int64, error) {
	return s.countRows(ctx, s.r, t, clientKey)
}

func (s *Store) countRows(ctx context.Context, db queryer, t store.Table, clientKey string) (int64, error) {
	if _, err := s.table(ctx, t.Name, []string{t.TenantColumn}); err != nil {
		return 0, fmt.Errorf("count %s: %w", t.Name, err)
	}
	var n int64
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quote(t.Name)+" WHERE "+quote(t.TenantColumn)+" = ?", clientKey).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", t.Name, unavailable(err))
	}
	return n, nil
}

// CopyRows inserts every batch next hands out in one transaction, several rows
// per statement, with the full-size statement prepared once per process.
func (s *Store) CopyRows(ctx context.Context, t store.Table, columns []string, next func() ([]store.Row, error)) (int64, error) {
	if err := checkColumns(t, columns); err != nil {
		return 0, err
	}
	info, err := s.table(ctx, t.Name, columns)
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", t.Name, err)
	}
	// The database computes generated columns: their values are left out.
	var write []int
	var names []string
	for i, c := range columns {
		if !info.generated[c] {
			write = append(write, i)
			names = append(names, c)
		}
	}
	first, err := next()
	if err != nil || len(first) == 0 {
		return 0, err
	}
	keyAt := make([]int, len(t.Key))
	for i, k := range t.Key {
		keyAt[i] = slices.Index(columns, k)
	}
	per := min(maxVariables/len(names), maxRowsPerInsert)
	insert := func(n int) string {
		tuple := "(?" + strings.Repeat(", ?", len(names)-1) + ")"
		return "INSERT INTO " + quote(t.Name) + " (" + quoteList(names) + ") VALUES " +
			tuple + strings.Repeat(", "+tuple, n-1)
	}

	// Prepared on the write pool before the transaction takes its only
	// connection, then bound to the transaction: SQLite parses the statement
	// once per process instead of once per call.
	shared, err := s.cachedStmt(ctx, insert(per))
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", t.Name, err)
	}
	var written int64
	var nextErr error
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// Foreign keys are checked at commit, not per row: a row of a
		// self-referencing table may come before the row it references.
		if _, err := tx.ExecContext(ctx, "PRAGMA defer_foreign_keys = ON"); err != nil {
			return err
		}
		var full *sql.Stmt
		if shared != nil {
			full = tx.StmtContext(ctx, shared)
		} else if full, err = tx.PrepareContext(ctx, insert(per)); err != nil {
			return err
		}
		defer full.Close()
		// Shorter statements for a batch's last rows, by row count.
		short := map[int]*sql.Stmt{}
		defer func() {
			for _, st := range short {
				st.Close()
			}
		}()
		args := make([]any, 0, per*len(names))
		for rows := first; len(rows) > 0; {
			for i, r := range rows {
				if len(r) != len(columns) {
					return realmhook.Errorf(realmhook.EINVALID, "row %d has %d values for %d columns", written+int64(i), len(r), len(columns))
				}
			}
			for start := 0; start < len(rows); start += per {
				chunk := rows[start:min(start+per, len(rows))]
				from := written
				args = args[:0]
				for _, r := range chunk {
					for _, j := range write {
						v := r[j]
						sv, err := storageValue(v)
						if err != nil {
							return &store.RowError{Table: t.Name, Column: columns[j], Key: keyOf(r, keyAt), Err: err}
						}
						args = append(args, sv)
					}
				}
				stmt := full
				if len(chunk) < per {
					if stmt = short[len(chunk)]; stmt == nil {
						var err error
						if stmt, err = tx.PrepareContext(ctx, insert(len(chunk))); err != nil {
							return err
						}
						short[len(chunk)] = stmt
					}
				}
				if _, err := stmt.ExecContext(ctx, args...); err != nil {
					if isUniqueViolation(err) {
						return &store.RowError{Table: t.Name, Err: realmhook.Errorf(realmhook.ECONFLICT, "a row in rows %d-%d already exists: %v", from, from+int64(len(chunk))-1, err)}
					} else if isConstraint(err) {
						return &store.RowError{Table: t.Name, Err: realmhook.Errorf(realmhook.EINVALID, "a row in rows %d-%d breaks a constraint: %v", from, from+int64(len(chunk))-1, err)}
					}
					return err
				}
				written += int64(len(chunk))
			}
			if rows, nextErr = next(); nextErr != nil {
				return nextErr
			}
		}
		return nil
	})
	if nextErr != nil {
		return 0, nextErr
	}
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", t.Name, err)
	}
	return written, nil
}

// DeleteRows deletes the tenant's rows with key after `after`, or all of them.
func (s *Store) DeleteRows(ctx context.Context, t store.Table, clientKey string, after store.Row) (int64, error) {
	need := [][]string{{t.TenantColumn}}
	if after != nil {
		if err := checkKey(t, after); err != nil {
			return 0, err
		}
		need = append(need, t.Key)
	}
	if _, err := s.table(ctx, t.Name, need...); err != nil {
		return 0, fmt.Errorf("delete from %s: %w", t.Name, err)
	}
	q := "DELETE FROM " + quote(t.Name) + " WHERE " + quote(t.TenantColumn) + " = ?"
	args := []any{clientKey}
	if after != nil {
		q += " AND " + keyAfter(t.Key)
		for i, v := range after {
			sv, err := storageValue(v)
			if err != nil {
				return 0, fmt.Errorf("delete from %s: cursor %s: %w", t.Name, t.Key[i], err)
			}
			args = append(args, sv)
		}
	}
	res, err := s.w.ExecContext(ctx, q, args...)
	if isConstraint(err) {
		return 0, realmhook.Errorf(realmhook.EINVALID, "delete from %s: %v", t.Name, err)
	} else if err != nil {
		return 0, fmt.Errorf("delete from %s: %w", t.Name, unavailable(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete from %s: %w", t.Name, err)
	}
	return n, nil
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

// storageValue converts a Go value to the form this backend stores and
// normalise reads back: booleans as 0/1, times as UTC text in timeLayout.
func storageValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, int64, float64, string:
		return x, nil
	case []byte:
		if x == nil {
			// A nil slice would bind as NULL; a Row's []byte is a value.
			return []byte{}, nil
		}
		return x, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case time.Time:
		return x.UTC().Format(timeLayout), nil
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return nil, realmhook.Errorf(realmhook.EINVALID, "value %d overflows int64", x)
		}
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return nil, realmhook.Errorf(realmhook.EINVALID, "value %d overflows int64", x)
		}
		return int64(x), nil
	case float32:
		return float64(x), nil
	}
	return nil, realmhook.Errorf(realmhook.EINVALID, "unsupported value type %T", v)
}

// maxCachedStmts bounds the prepared INSERTs kept: one per table, column list
// and batch size in use, which a migration keeps few.
const maxCachedStmts = 64

// cachedStmt returns q prepared on the write pool, preparing it on first use,
// or nil when the cache is full. Cached statements live until Close, so a
// caller never finds one closed under it.
func (s *Store) cachedStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.stmts[q]; ok {
		return st, nil
	}
	if len(s.stmts) >= maxCachedStmts {
		return nil, nil
	}
	st, err := s.w.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	s.stmts[q] = st
	return st, nil
}

// ForeignKeys returns the foreign keys declared on table, from
// pragma_foreign_key_list. SQLite does not report whether one is deferrable,
// so none is taken to be.
func (s *Store) ForeignKeys(ctx context.Context, table string) ([]store.ForeignKey, error) {
	if err := validIdent("table", table); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT "table" FROM pragma_foreign_key_list(?) GROUP BY "table" ORDER BY min(id)`, table)
	if err != nil {
		return nil, fmt.Errorf("foreign keys of %s: %w", table, err)
	}
	defer rows.Close()
	var out []store.ForeignKey
	for rows.Next() {
		fk := store.ForeignKey{Child: table}
		if err := rows.Scan(&fk.Parent); err != nil {
			return nil, fmt.Errorf("foreign keys of %s: %w", table, err)
		}
		out = append(out, fk)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("foreign keys of %s: %w", table, err)
	}
	return out, nil
}

// insertTrigger matches a trigger's SQL that fires on INSERT.
var insertTrigger = regexp.MustCompile(`(?is)\bINSERT\s+ON\b`)

// Triggers returns the table's INSERT triggers: SQLite has no way to keep
// a connection's inserts from firing them.
func (s *Store) Triggers(ctx context.Context, table string) ([]string, error) {
	if err := validIdent("table", table); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE ORDER BY name`, table)
	if err != nil {
		return nil, fmt.Errorf("triggers of %s: %w", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name, sql string
		if err := rows.Scan(&name, &sql); err != nil {
			return nil, fmt.Errorf("triggers of %s: %w", table, err)
		}
		if insertTrigger.MatchString(sql) {
			out = append(out, name)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("triggers of %s: %w", table, err)
	}
	return out, nil
}

// AdvanceSequences does nothing: SQLite's only sequences are a rowid
// alias's, which the next insert takes past the largest rowid, and
// AUTOINCREMENT's sqlite_sequence, which every insert of a larger rowid
// advances itself.
func (s *Store) AdvanceSequences(ctx context.Context, table string) error {
	return validIdent("table", table)
}

// CheckTable checks that t exists with its tenant and key columns and a
// unique key within them. The primary key is read from table_info because a
// rowid alias (INTEGER PRIMARY KEY) has no entry in index_list.
func (s *Store) CheckTable(ctx context.Context, t store.Table) error {
	if len(t.Key) == 0 {
		return realmhook.Errorf(realmhook.EINVALID, "table %s: no key columns configured", t.Name)
	}
	info, err := s.loadTable(ctx, t.Name)
	if err != nil {
		return err
	}
	for _, c := range append([]string{t.TenantColumn}, t.Key...) {
		if _, ok := info.types[c]; !ok {
			return realmhook.Errorf(realmhook.EINVALID, "table %s has no column %q", t.Name, c)
		}
	}
	var keys [][]string
	var pk []string
	rows, err := s.r.QueryContext(ctx, `SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk`, t.Name)
	if err != nil {
		return fmt.Errorf("primary key of %s: %w", t.Name, err)
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return fmt.Errorf("primary key of %s: %w", t.Name, err)
		}
		pk = append(pk, c)
	}
	rows.Close()
	if len(pk) > 0 {
		keys = append(keys, pk)
	}
	// One row per column of every full unique index; a NULL name is an
	// expression, which makes the index useless here.
	rows, err = s.r.QueryContext(ctx, `SELECT il.name, ii.name FROM pragma_index_list(?) il
		JOIN pragma_index_info(il.name) ii WHERE il."unique" = 1 AND il.partial = 0 ORDER BY il.name, ii.seqno`, t.Name)
	if err != nil {
		return fmt.Errorf("unique indexes of %s: %w", t.Name, err)
	}
	defer rows.Close()
	byIndex := map[string][]string{}
	var order []string
	for rows.Next() {
		var idx string
		var col sql.NullString
		if err := rows.Scan(&idx, &col); err != nil {
			return fmt.Errorf("unique indexes of %s: %w", t.Name, err)
		}
		if _, seen := byIndex[idx]; !seen {
			order = append(order, idx)
		}
		c := col.String
		if !col.Valid {
			c = "\x00expression"
		}
		byIndex[idx] = append(byIndex[idx], c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("unique indexes of %s: %w", t.Name, err)
	}
	for _, idx := range order {
		keys = append(keys, byIndex[idx])
	}
	return store.CheckUniqueKey(t, keys)
}
