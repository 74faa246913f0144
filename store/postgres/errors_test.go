package postgres

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// TestErrorClasses: what the server says about the data is a domain error
// a retry would meet again; only a lost connection or a server going away
// is marked unavailable (the one kind a migration retries).
func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		code, want  string
		unavailable bool
	}{
		{"22P02", realmhook.EINVALID, false}, // invalid_text_representation
		{"22008", realmhook.EINVALID, false}, // datetime_field_overflow
		{"23502", realmhook.EINVALID, false}, // not_null_violation
		{"23503", realmhook.EINVALID, false}, // foreign_key_violation
		{"23514", realmhook.EINVALID, false}, // check_violation
		{"23505", realmhook.ECONFLICT, false},
		{"42703", realmhook.EINVALID, false},    // undefined_column
		{"42804", realmhook.EINVALID, false},    // datatype_mismatch
		{"42501", realmhook.EINVALID, false},    // insufficient_privilege
		{"57014", realmhook.EINVALID, false},    // query_canceled by a timeout
		{"57P01", realmhook.EUNAVAILABLE, true}, // admin_shutdown
		{"08006", realmhook.EUNAVAILABLE, true}, // connection_failure
		{"53300", realmhook.EINTERNAL, false},
	} {
		t.Run(tc.code, func(t *testing.T) {
			err := unavailable(&pgconn.PgError{Code: tc.code, Message: "m", ColumnName: "c"})
			if got := realmhook.ErrorCode(dataError(err)); got != tc.want {
				t.Errorf("code = %s, want %s", got, tc.want)
			}
			if got := errors.Is(err, realmhook.ErrUnavailable); got != tc.unavailable {
				t.Errorf("unavailable = %v, want %v", got, tc.unavailable)
			}
		})
	}
	if !errors.Is(unavailable(fmt.Errorf("read: %w", io.ErrUnexpectedEOF)), realmhook.ErrUnavailable) {
		t.Error("a connection cut mid-read is not marked unavailable")
	}
	if errors.Is(unavailable(errors.New("unable to encode \"infinity\" into binary format")), realmhook.ErrUnavailable) {
		t.Error("an encoding error is marked unavailable")
	}
	var re *store.RowError
	if err := rowError("items", &pgconn.PgError{Code: "22007", Message: "bad", ColumnName: "day"}); !errors.As(err, &re) || re.Column != "day" || re.Table != "items" {
		t.Errorf("rowError = %#v, want a RowError naming items.day", err)
	}
}
