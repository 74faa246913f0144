package transfer

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/store"
)

// Metadata keys of an error's realmhook code and, for a row the target
// refused, its table and column, so the source reads the error as the
// in-process peer would have returned it.
const (
	metaCode      = "Realmhook-Code"
	metaRowTable  = "Realmhook-Row-Table"
	metaRowColumn = "Realmhook-Row-Column"
	metaFenced    = "Realmhook-Fenced"
)

// connectCodes maps realmhook's codes to connect's, the one table of it.
// The metadata carries the realmhook code itself; this is for other
// clients and for logs.
var connectCodes = map[string]connect.Code{
	realmhook.ECONFLICT:     connect.CodeFailedPrecondition,
	realmhook.EMIGRATING:    connect.CodeFailedPrecondition,
	realmhook.EINVALID:      connect.CodeInvalidArgument,
	realmhook.ENOTFOUND:     connect.CodeNotFound,
	realmhook.EUNAUTHORIZED: connect.CodeUnauthenticated,
	realmhook.ETOOLARGE:     connect.CodeResourceExhausted,
	realmhook.EUNAVAILABLE:  connect.CodeUnavailable,
	realmhook.EINTERNAL:     connect.CodeInternal,
}

// toConnect is how the target tells the source about err: its code and
// the whole text, which the source logs and records in the migration's
// events as it would the in-process peer's error (never shown to the host).
func toConnect(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return connect.NewError(connect.CodeCanceled, err)
	}
	code := realmhook.ErrorCode(err)
	cc, ok := connectCodes[code]
	if !ok {
		cc = connect.CodeUnknown
	}
	ce := connect.NewError(cc, errors.New(err.Error()))
	ce.Meta().Set(metaCode, code)
	if errors.Is(err, migration.ErrFenced) {
		ce.Meta().Set(metaFenced, "true")
	}
	var re *store.RowError
	if errors.As(err, &re) {
		ce.Meta().Set(metaRowTable, re.Table)
		ce.Meta().Set(metaRowColumn, re.Column)
	}
	return ce
}

// fromConnect is toConnect's inverse on the source: the target's error
// with its realmhook code, or, for an error that never reached the target
// (a dropped connection, a timeout, a refused dial), EUNAVAILABLE, which the
// engine retries from the last checkpoint.
func fromConnect(realm string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return realmhook.Unavailable(err)
	}
	code := ce.Meta().Get(metaCode)
	if code == "" {
		switch {
		case errors.Is(err, context.Canceled):
			// This side gave up (a shutdown); connect also says "canceled"
			// of a connection the network reset, which is below.
			return err
		case ce.Code() == connect.CodeUnauthenticated:
			// A secret that differs between the realms: no retry helps.
			return &realmhook.Error{Code: realmhook.EUNAUTHORIZED, Message: "realm " + realm + " refused this process's internal token (is internal.secret the same in both?)", Err: err}
		}
		return &realmhook.Error{Code: realmhook.EUNAVAILABLE, Message: "realm " + realm + " did not answer; retry", Err: err}
	}
	out := &realmhook.Error{Code: code, Message: "realm " + realm + ": " + ce.Message()}
	if ce.Meta().Get(metaFenced) != "" {
		out.Err = migration.ErrFenced
	}
	if table := ce.Meta().Get(metaRowTable); table != "" {
		return &store.RowError{Table: table, Column: ce.Meta().Get(metaRowColumn), Err: out}
	}
	return out
}

// transient reports whether a call that failed with err may succeed when
// made again: it never reached the target, or the target's database did not
// answer.
func transient(err error) bool {
	return realmhook.ErrorCode(err) == realmhook.EUNAVAILABLE
}
