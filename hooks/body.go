package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/realmhook/realmhook"
)

// maxBodyBytes bounds every request body; larger bodies are refused with 413.
const maxBodyBytes = 1 << 20

// maxJSONDepth bounds the nesting of every JSON body and property value. Go
// parses up to 10000 levels, but whatever reads a stored value next (the
// partner's app, in any language) may recurse once per level; a hook body is
// two levels deep and app data rarely passes ten.
const maxJSONDepth = 64

// checkJSONDepth refuses valid JSON nested deeper than maxJSONDepth.
func checkJSONDepth(b []byte, what string) error {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > maxJSONDepth {
				return realmhook.Errorf(realmhook.EINVALID, "%s is nested more than %d levels deep", what, maxJSONDepth)
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return nil
}

// singleValued returns the request's query, refusing one that repeats any of
// names: which of two values would be used is the caller's guess, not ours
// to make (and the qsh covers both, so a host never sends them twice).
func singleValued(r *http.Request, names ...string) (url.Values, error) {
	// r.URL.Query() drops what it cannot decode; a parameter silently
	// ignored would be one the caller thinks was applied.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "query string cannot be decoded: %v", err)
	}
	for _, name := range names {
		if n := len(q[name]); n > 1 {
			return nil, realmhook.Errorf(realmhook.EINVALID, "query parameter %s is given %d times; give it once", name, n)
		}
	}
	return q, nil
}

// readBody reads the whole body up to maxBodyBytes.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "reading request body: %v", err)
	}
	if len(b) > maxBodyBytes {
		return nil, realmhook.Errorf(realmhook.ETOOLARGE, "request body is larger than %d bytes", maxBodyBytes)
	}
	return b, nil
}

// decodeJSON reads a JSON object body into v.
func decodeJSON(r *http.Request, v any) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return realmhook.Errorf(realmhook.EINVALID, "request body is empty; a JSON object is required")
	}
	if err := checkJSONDepth(b, "request body"); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return realmhook.Errorf(realmhook.EINVALID, "malformed JSON body: %s", describeJSONError(err))
	}
	if dec.More() {
		return realmhook.Errorf(realmhook.EINVALID, "malformed JSON body: trailing data after the JSON value")
	}
	return nil
}

func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return fmt.Sprintf("field %q must be %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	return err.Error()
}
