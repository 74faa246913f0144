package realmhook

import (
	"context"
	"errors"
	"fmt"
)

// Error codes. The HTTP layer maps each to one status in one table.
const (
	ECONFLICT     = "conflict"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
	ETOOLARGE     = "too_large"
	// EHEADERSTOOLARGE: the request's headers are larger than allowed.
	EHEADERSTOOLARGE = "headers_too_large"
	// EMIGRATING: the tenant is frozen for writes while a migration runs.
	EMIGRATING = "tenant_migrating"
	// EMISDIRECTED: the tenant lives in another realm than the one called.
	EMISDIRECTED = "misdirected_request"
	// EUNAVAILABLE: a realm's database did not answer (lost connection,
	// timeout, closed, locked). Transient: the caller is told to retry.
	EUNAVAILABLE = "unavailable"
	// EUPSTREAM: the app's server behind the gateway could not be reached
	// or broke off its answer.
	EUPSTREAM = "upstream_unavailable"
	// EUPSTREAMTIMEOUT: the app's server did not start to answer within
	// gateway.timeout.
	EUPSTREAMTIMEOUT = "upstream_timeout"
	// EINTERNAL: a bug. Any error that is not an *Error has this code.
	EINTERNAL = "internal"
)

// Error is the domain error: a code machines act on, a message for people, and
// optional fields that help the caller (for example the realm a tenant lives in).
type Error struct {
	Code    string
	Message string
	Fields  map[string]any
	// Err is the cause, for logs and errors.Is/As; it is never shown to the
	// caller, who sees Message.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrUnavailable is in the chain of every error that says a database did not
// answer (errors.Is finds it), and gives such an error its code and message.
// It is the one kind of error a migration job retries and the host is told
// to retry.
var ErrUnavailable = &Error{Code: EUNAVAILABLE, Message: "the realm's database did not answer; retry"}

// Unavailable marks err, a database that did not answer, with ErrUnavailable;
// an error that already carries a domain code is returned as it is.
func Unavailable(err error) error {
	var e *Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// With returns a copy of e with one more field.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Fields = make(map[string]any, len(e.Fields)+1)
	for k, v := range e.Fields {
		c.Fields[k] = v
	}
	c.Fields[key] = value
	return &c
}

// ErrorCode returns the code of the first *Error in err's chain; for any other
// error EUNAVAILABLE when a deadline ran out waiting for an answer, else
// EINTERNAL; and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.DeadlineExceeded):
		return EUNAVAILABLE
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain; other
// errors get a generic message so nothing internal leaks.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	case ErrorCode(err) == EUNAVAILABLE:
		return "a dependency did not answer in time; retry"
	}
	return "internal error"
}
