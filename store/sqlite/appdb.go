package sqlite

import (
	"database/sql"
	"fmt"
)

// SQLDB is a pool on the realm's file for the app's own tables, opened on
// first use. Its transactions take the write lock when they begin (BEGIN
// IMMEDIATE), so an app's write waits its turn (busy timeout) instead of
// failing when it would upgrade a read lock.
func (s *Store) SQLDB() (*sql.DB, error) {
	s.appOnce.Do(func() {
		db, err := sql.Open("sqlite", s.path+"?"+s.pragmas+"&_txlock=immediate")
		if err != nil {
			s.appErr = fmt.Errorf("open sqlite %s for the app: %w", s.path, err)
			return
		}
		db.SetMaxOpenConns(readConns())
		db.SetMaxIdleConns(readConns())
		db.SetConnMaxIdleTime(0)
		s.app = db
	})
	return s.app, s.appErr
}
