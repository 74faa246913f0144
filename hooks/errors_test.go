package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/realmhook/realmhook"
)

// TestWriteError: every route and every migration hook answer an error from
// one status table; a database that did not answer is 503 without an
// errorResponseCode (the host retries it), a bug is 500 and logged with its
// stack.
func TestWriteError(t *testing.T) {
	down := fmt.Errorf("get tenant: %w", realmhook.Unavailable(errors.New("dial tcp: connection refused")))
	cases := []struct {
		name      string
		err       error
		status    int
		code      string
		response  string // errorResponseCode of a migration hook; "" for none
		logLevel  string // "" for not logged
		wantStack bool
	}{
		{"Invalid", realmhook.Errorf(realmhook.EINVALID, "bad"), 400, realmhook.EINVALID, "E9999", "", false},
		{"NotFound", realmhook.Errorf(realmhook.ENOTFOUND, "gone"), 404, realmhook.ENOTFOUND, "E9999", "", false},
		{"Conflict", realmhook.Errorf(realmhook.ECONFLICT, "busy"), 409, realmhook.ECONFLICT, "E9999", "", false},
		{"Unauthorized", realmhook.Errorf(realmhook.EUNAUTHORIZED, "who"), 401, realmhook.EUNAUTHORIZED, "", "", false},
		{"TooLarge", realmhook.Errorf(realmhook.ETOOLARGE, "big"), 413, realmhook.ETOOLARGE, "", "", false},
		{"HeadersTooLarge", realmhook.Errorf(realmhook.EHEADERSTOOLARGE, "big"), 431, realmhook.EHEADERSTOOLARGE, "", "", false},
		{"Misdirected", realmhook.Errorf(realmhook.EMISDIRECTED, "there"), 421, realmhook.EMISDIRECTED, "E9999", "", false},
		{"Upstream", realmhook.Errorf(realmhook.EUPSTREAM, "down"), 502, realmhook.EUPSTREAM, "E9999", "", false},
		{"UpstreamTimeout", realmhook.Errorf(realmhook.EUPSTREAMTIMEOUT, "slow"), 504, realmhook.EUPSTREAMTIMEOUT, "E9999", "", false},
		{"Unavailable", down, 503, realmhook.EUNAVAILABLE, "", "WARN", false},
		{"Deadline", fmt.Errorf("list: %w", context.DeadlineExceeded), 503, realmhook.EUNAVAILABLE, "", "WARN", false},
		{"Bug", errors.New("nil map"), 500, realmhook.EINTERNAL, "E9999", "ERROR", true},
		{"UnknownCode", realmhook.Errorf("no_such_code", "?"), 500, "no_such_code", "E9999", "", false},
	}
	for _, tc := range cases {
		for _, hook := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/hook=%v", tc.name, hook), func(t *testing.T) {
				var logs bytes.Buffer
				s := &Server{logger: slog.New(slog.NewJSONHandler(&logs, nil))}
				w := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				if hook {
					s.writeMigrationError(w, r, tc.err)
				} else {
					s.writeError(w, r, tc.err)
				}
				var body map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
					t.Fatal(err)
				}
				if w.Code != tc.status || body["error"] != tc.code {
					t.Fatalf("answered %d %v, want %d %s", w.Code, body, tc.status, tc.code)
				}
				rc, has := body["errorResponseCode"]
				switch {
				case hook && tc.response != "" && rc != tc.response:
					t.Fatalf("errorResponseCode %v, want %s", rc, tc.response)
				case (!hook || tc.response == "") && has:
					t.Fatalf("errorResponseCode %v, want none", rc)
				}
				if strings.Contains(fmt.Sprint(body["message"]), "connection refused") || strings.Contains(fmt.Sprint(body["message"]), "nil map") {
					t.Fatalf("message %q tells internals", body["message"])
				}
				var line map[string]any
				if logs.Len() > 0 {
					if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
						t.Fatalf("log %q: %v", logs.String(), err)
					}
				}
				if got, _ := line["level"].(string); got != tc.logLevel {
					t.Fatalf("logged at %q, want %q: %s", got, tc.logLevel, logs.String())
				}
				if tc.logLevel != "" && line["err"] == nil {
					t.Fatalf("log line lacks the err attribute: %s", logs.String())
				}
				if stack, _ := line["stack"].(string); tc.wantStack != strings.Contains(stack, "hooks.TestWriteError") {
					t.Fatalf("stack logged = %v, want %v: %s", stack != "", tc.wantStack, logs.String())
				}
			})
		}
	}
}
