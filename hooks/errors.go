package hooks

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/realmhook/realmhook"
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
	// Internal errors are, in practice, a database that does not answer:
	// transient, so callers are told to come back.
	realmhook.EINTERNAL: http.StatusServiceUnavailable,
}

func statusOf(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusServiceUnavailable
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

// writeError answers with the error's status and JSON body. Internal errors
// are logged with their detail and answered without it.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := realmhook.ErrorCode(err)
	if code == realmhook.EINTERNAL {
		s.log(r).Error("request failed", slog.String("error", err.Error()))
	}
	writeJSON(w, statusOf(code), errorBody(err))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
