// Package connecterr maps realmhook's error codes to Connect RPC codes and
// back, in one table, for every connect-go API realmhook serves or calls.
package connecterr

import (
	"errors"

	"connectrpc.com/connect"

	"github.com/realmhook/realmhook"
)

// codes is the one table: each realmhook code and the Connect code an RPC
// answers it with. EINTERNAL (and anything unknown) is CodeInternal.
var codes = map[string]connect.Code{
	realmhook.EINVALID:         connect.CodeInvalidArgument,
	realmhook.ENOTFOUND:        connect.CodeNotFound,
	realmhook.ECONFLICT:        connect.CodeFailedPrecondition,
	realmhook.EUNAUTHORIZED:    connect.CodeUnauthenticated,
	realmhook.ETOOLARGE:        connect.CodeResourceExhausted,
	realmhook.EHEADERSTOOLARGE: connect.CodeResourceExhausted,
	realmhook.EMIGRATING:       connect.CodeFailedPrecondition,
	realmhook.EMISDIRECTED:     connect.CodeFailedPrecondition,
	realmhook.EUNAVAILABLE:     connect.CodeUnavailable,
	realmhook.EINTERNAL:        connect.CodeInternal,
}

// realmhookCode is the table read the other way; where two realmhook codes
// share a Connect code, the first listed here wins.
var realmhookCode = func() map[connect.Code]string {
	m := map[connect.Code]string{}
	for _, c := range []string{realmhook.EINVALID, realmhook.ENOTFOUND, realmhook.ECONFLICT,
		realmhook.EUNAUTHORIZED, realmhook.ETOOLARGE, realmhook.EUNAVAILABLE, realmhook.EINTERNAL} {
		m[codes[c]] = c
	}
	return m
}()

// Code is the Connect code for err's realmhook code.
func Code(err error) connect.Code {
	if c, ok := codes[realmhook.ErrorCode(err)]; ok {
		return c
	}
	return connect.CodeInternal
}

// Error is err as an RPC answer: its Connect code and its message for a
// person (realmhook.ErrorMessage), never the wrapped causes, which may name
// internals. A *connect.Error passes through as is.
func Error(err error) *connect.Error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	return connect.NewError(Code(err), errors.New(realmhook.ErrorMessage(err)))
}

// FromConnect is a Connect error received from a peer as a *realmhook.Error
// with the matching code and the peer's message.
func FromConnect(err error) error {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return err
	}
	code, ok := realmhookCode[ce.Code()]
	switch {
	case ok:
	case ce.Code() == connect.CodeDeadlineExceeded, ce.Code() == connect.CodeCanceled, ce.Code() == connect.CodeAborted:
		code = realmhook.EUNAVAILABLE
	default:
		code = realmhook.EINTERNAL
	}
	return &realmhook.Error{Code: code, Message: ce.Message(), Err: err}
}
