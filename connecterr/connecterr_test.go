package connecterr

import (
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"

	"github.com/realmhook/realmhook"
)

func TestError_RoundTrip(t *testing.T) {
	for _, code := range []string{realmhook.EINVALID, realmhook.ENOTFOUND, realmhook.ECONFLICT,
		realmhook.EUNAUTHORIZED, realmhook.ETOOLARGE, realmhook.EUNAVAILABLE, realmhook.EINTERNAL} {
		t.Run(code, func(t *testing.T) {
			err := fmt.Errorf("context: %w", realmhook.Errorf(code, "what went wrong"))
			ce := Error(err)
			if ce.Message() != "what went wrong" {
				t.Errorf("message = %q, want the domain message alone", ce.Message())
			}
			back := FromConnect(ce)
			if got := realmhook.ErrorCode(back); got != code {
				t.Errorf("round trip: code %s came back as %s", code, got)
			}
		})
	}
}

func TestError_HidesInternals(t *testing.T) {
	ce := Error(errors.New("dial tcp 10.0.0.7:5432: secret detail"))
	if ce.Code() != connect.CodeInternal || ce.Message() != "internal error" {
		t.Errorf("Error(plain) = %v %q, want internal, \"internal error\"", ce.Code(), ce.Message())
	}
}

func TestFromConnect_Unknown(t *testing.T) {
	for code, want := range map[connect.Code]string{
		connect.CodeDeadlineExceeded: realmhook.EUNAVAILABLE,
		connect.CodeUnimplemented:    realmhook.EINTERNAL,
	} {
		if got := realmhook.ErrorCode(FromConnect(connect.NewError(code, errors.New("x")))); got != want {
			t.Errorf("FromConnect(%v) code = %s, want %s", code, got, want)
		}
	}
}
