package migration

import (
	"errors"

	"github.com/realmhook/realmhook"
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

// permanent reports whether a copy error will recur on retry (a conflict, a
// missing table, bad configuration), so the migration must fail rather than
// resume later. Anything else (a lost connection, a busy database) is retried.
func permanent(err error) bool {
	switch realmhook.ErrorCode(err) {
	case realmhook.ECONFLICT, realmhook.EINVALID, realmhook.ENOTFOUND:
		return true
	}
	return false
}
