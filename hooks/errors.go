package hooks

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/identity"
	"github.com/realmhook/realmhook/migration"
)

// statusByCode is the one place a domain error code becomes an HTTP status.
var statusByCode = map[string]int{
	realmhook.EINVALID:         http.StatusBadRequest,
	realmhook.EUNAUTHORIZED:    http.StatusUnauthorized,
	realmhook.ENOTFOUND:        http.StatusNotFound,
	realmhook.ECONFLICT:        http.StatusConflict,
	realmhook.EMIGRATING:       http.StatusConflict,
	realmhook.ETOOLARGE:        http.StatusRequestEntityTooLarge,
	realmhook.EHEADERSTOOLARGE: http.StatusRequestHeaderFieldsTooLarge,
	realmhook.EMISDIRECTED:     http.StatusMisdirectedRequest,
	realmhook.EUPSTREAM:        http.StatusBadGateway,
	realmhook.EUPSTREAMTIMEOUT: http.StatusGatewayTimeout,
	// A database that did not answer is transient: the caller is told to
	// come back, and the host retries a hook so answered.
	realmhook.EUNAVAILABLE: http.StatusServiceUnavailable,
	realmhook.EINTERNAL:    http.StatusInternalServerError,
}

// statusOf is the status of a domain code; a code missing from the table is a
// bug, so it is answered as one.
func statusOf(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON every error response carries.
func errorBody(err error) map[string]any {
	body := map[string]any{
		"error":   realmhook.ErrorCode(err),
		"message": realmhook.ErrorMessage(err),
	}
	var e *realmhook.Error
	if errors.As(err, &e) {
		for k, v := range e.Fields {
			body[k] = v
		}
	}
	return body
}

// writeError answers with the error's status and JSON body. A bug is logged
// with its detail and stack, a database that did not answer with its detail;
// both are answered without it.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	writeJSON(w, s.logError(r, err), errorBody(err))
}

// writeMigrationError answers a failed migration hook as writeError does,
// with the errorResponseCode the migration engine derives for the error (none
// for a database that did not answer: the host retries such an answer).
//
// A hook for a tenant another realm's process holds is not refused: it is
// forwarded there, and that process's answer is the answer.
func (s *Server) writeMigrationError(w http.ResponseWriter, r *http.Request, err error) {
	var held *identity.HeldElsewhere
	if errors.As(err, &held) && s.opts.Remote != nil {
		s.forward(w, r, held)
		return
	}
	status := s.logError(r, err)
	body := errorBody(err)
	if code := migration.ResponseCode(err); code != "" {
		body["errorResponseCode"] = code
	}
	writeJSON(w, status, body)
}

// logError logs what the caller will not be told and returns the status.
func (s *Server) logError(r *http.Request, err error) int {
	code := realmhook.ErrorCode(err)
	switch code {
	case realmhook.EINTERNAL:
		s.log(r).Error("request failed", slog.String("err", err.Error()), slog.String("stack", string(debug.Stack())))
	case realmhook.EUNAVAILABLE:
		s.log(r).Warn("request failed: database did not answer", slog.String("err", err.Error()))
	}
	return statusOf(code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// WriteError answers err as every realmhook route does, with the status of
// its code in the one table and the JSON error body: for handlers outside
// this package (egress) that must read the same.
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeError(w, r, err)
}
