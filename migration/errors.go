package migration

import (
	"errors"
	"fmt"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// Why a hook is refused, where the protocol has a code of its own for it. A
// refusal wraps one of these as its cause (realmhook.Error.Err); ResponseCode
// reads it back.
var (
	errNotScheduled      = errors.New("migration not scheduled")
	errRealmNotSupported = errors.New("realm not supported")
	errSwitchedOff       = errors.New("migrations switched off")
	errTooManyConcurrent = errors.New("too many concurrent migrations")
	// errCannotGoOn: a job met what ends the migration (the window ended,
	// the copy differs, the target refused the tenant); E9999.
	errCannotGoOn = errors.New("the migration cannot go on")
)

// responseCodes maps each reason to its host-facing errorResponseCode.
var responseCodes = []struct {
	reason error
	code   string
}{
	{errNotScheduled, realmhook.ResponseNotScheduled},
	{errRealmNotSupported, realmhook.ResponseRealmNotSupported},
	{errSwitchedOff, realmhook.ResponseNotSupported},
	{errTooManyConcurrent, realmhook.ResponseTooManyConcurrent},
}

// ResponseCode derives the host-facing errorResponseCode (E0001…E9999) of an
// error. It is the only place that decides it. "" means the answer carries
// none: for nil, for EUNAVAILABLE (the host retries an answer without a code,
// and a database that did not answer may answer next time), and for
// EUNAUTHORIZED, ETOOLARGE and EHEADERSTOOLARGE (refused before the
// protocol was spoken).
// Otherwise it is the code of the reason the error wraps, or E9999.
func ResponseCode(err error) string {
	switch realmhook.ErrorCode(err) {
	case "", realmhook.EUNAVAILABLE, realmhook.EUNAUTHORIZED, realmhook.ETOOLARGE, realmhook.EHEADERSTOOLARGE:
		return ""
	}
	for _, rc := range responseCodes {
		if errors.Is(err, rc.reason) {
			return rc.code
		}
	}
	return realmhook.ResponseOther
}

// isReason reports whether err is one of the reasons above, that is whether
// the error it caused is a refusal of this package.
func isReason(err error) bool {
	if err == nil {
		return false
	}
	if err == errCannotGoOn {
		return true
	}
	for _, rc := range responseCodes {
		if err == rc.reason {
			return true
		}
	}
	return false
}

// refusal returns a domain error with code and a message, caused by reason.
func refusal(code string, reason error, format string, args ...any) error {
	return &realmhook.Error{Code: code, Message: fmt.Sprintf(format, args...), Err: reason}
}

// notScheduled is the answer to a hook naming a migration we do not know.
func notScheduled(clientKey, id string) error {
	return refusal(realmhook.ENOTFOUND, errNotScheduled, "migration %q of tenant %q was not scheduled", id, clientKey)
}

// permanent reports whether a job error will recur on retry, so the
// migration must fail rather than resume later: every error except a
// database that did not answer (EUNAVAILABLE: a lost connection, a server
// shutting down, a busy database, this Service stopping). A value the target
// cannot hold, a constraint, a missing table, a window that ended, a bug:
// none goes away by copying again.
func permanent(err error) bool {
	return realmhook.ErrorCode(err) != realmhook.EUNAVAILABLE
}

// hostMessage is what the host is told of an error that failed a job: the
// message of this package's refusal, written for the host; for any other
// error a short sentence by its kind, never the error's own text, which may
// quote SQL or a database server's words. The whole error goes to the log
// and the failed event.
func hostMessage(state realmhook.MigrationState, err error) string {
	// A refusal of this package is written for the host: it is told as is.
	var e *realmhook.Error
	if errors.As(err, &e) && isReason(e.Err) {
		return e.Message
	}
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
