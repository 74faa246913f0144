package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/realmhook/realmhook"
)

// maxBodyBytes bounds every request body; larger bodies are refused with 413.
const maxBodyBytes = 1 << 20

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
