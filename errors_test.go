package realmhook_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/realmhook/realmhook"
)

func TestErrorCode(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.1:5432: connection refused")
	down := fmt.Errorf("get tenant: %w", realmhook.Unavailable(cause))
	cases := []struct {
		name      string
		err       error
		code, msg string
	}{
		{"Nil", nil, "", ""},
		{"Domain", fmt.Errorf("ctx: %w", realmhook.Errorf(realmhook.ENOTFOUND, "tenant %q not found", "ck")), realmhook.ENOTFOUND, `tenant "ck" not found`},
		{"Bug", errors.New("index out of range"), realmhook.EINTERNAL, "internal error"},
		{"Unavailable", down, realmhook.EUNAVAILABLE, "the realm's database did not answer; retry"},
		{"Deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), realmhook.EUNAVAILABLE, "a dependency did not answer in time; retry"},
		{"UnavailableKeepsDomainCode", realmhook.Unavailable(realmhook.Errorf(realmhook.ECONFLICT, "taken")), realmhook.ECONFLICT, "taken"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := realmhook.ErrorCode(tc.err); got != tc.code {
				t.Errorf("ErrorCode = %q, want %q", got, tc.code)
			}
			if got := realmhook.ErrorMessage(tc.err); got != tc.msg {
				t.Errorf("ErrorMessage = %q, want %q", got, tc.msg)
			}
		})
	}
	// The cause stays in the chain, for logs and errors.Is, but out of the
	// message a caller reads.
	if !errors.Is(down, cause) {
		t.Errorf("Unavailable lost its cause: %v", down)
	}
}
