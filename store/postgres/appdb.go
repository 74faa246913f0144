package postgres

import (
	"database/sql"

	"github.com/jackc/pgx/v5/stdlib"
)

// SQLDB is the realm's database for the app's own tables: database/sql over
// this store's pgx pool (pgx's stdlib), opened on first use.
func (s *Store) SQLDB() (*sql.DB, error) {
	s.appOnce.Do(func() { s.app = stdlib.OpenDBFromPool(s.pool) })
	return s.app, nil
}
