package migration

import (
	"errors"
	"fmt"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// responseCodeField is the *realmhook.Error field that carries the host-facing
// errorResponseCode; the HTTP layer copies it into the response body.
const responseCodeField = "errorResponseCode"

// ResponseCode derives the host-facing errorResponseCode (E0001…E9999) of an
// error: the code attached by this package, E9999 for any other error, and ""
// for nil. It is the only place that decides it.
func ResponseCode(err error) string {
	if err == nil {
		return ""
	}
	var e *realmhook.Error
	if errors.As(err, &e) {
		if code, ok := e.Fields[responseCodeField].(string); ok && code != "" {
			return code
		}
	}
	return realmhook.ResponseOther
}

// hookError returns a domain error carrying the host-facing response code.
func hookError(code, response, format string, args ...any) error {
	return realmhook.Errorf(code, format, args...).With(responseCodeField, response)
}

// notScheduled is the answer to a hook naming a migration we do not know.
func notScheduled(clientKey, id string) error {
	return hookError(realmhook.ENOTFOUND, realmhook.ResponseNotScheduled,
		"migration %q of tenant %q was not scheduled", id, clientKey)
}

// permanent reports whether a job error will recur on retry, so the
// migration must fail rather than resume later: every error except one the
// store marks as the database being unavailable (a lost connection, a
// server shutting down, a busy database). A value the target cannot hold, a
// constraint, a missing table, a bug: none goes away by copying again.
func permanent(err error) bool {
	return !errors.Is(err, store.ErrUnavailable)
}

// hostMessage is what the host is told of an error that failed a job: a
// short sentence by the kind of error, never the error's own text, which may
// quote SQL or a database server's words; the whole error goes to the log
// and the failed event.
func hostMessage(state realmhook.MigrationState, err error) string {
	var re *store.RowError
	if errors.As(err, &re) {
		return "the copy met a value the target cannot hold exactly (the migration's events name the table, column and row)"
	}
	what := "the migration failed"
	switch realmhook.ErrorCode(err) {
	case realmhook.ECONFLICT:
		what = "the copy conflicts with data in the target realm"
	case realmhook.ENOTFOUND:
		what = "a table or record the migration needs is missing"
	case realmhook.EINVALID:
		what = "the tenant's data does not fit the target realm's tables"
	}
	return fmt.Sprintf("%s (while %s); the details are in realmhook's log and the migration's events", what, state)
}
