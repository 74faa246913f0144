package storetest

import (
	"context"
	"testing"

	"github.com/realmhook/realmhook"
)

// testTenantTransitions: UpdateTenant checks every state change with
// realmhook.CheckTenantTransition, refusing a move the table does not allow
// (ECONFLICT) and writing nothing, so no writer can put a record in a state
// it cannot reach.
func testTenantTransitions(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := context.Background()
	for _, from := range realmhook.TenantStates {
		for _, to := range realmhook.TenantStates {
			t.Run(string(from)+">"+string(to), func(t *testing.T) {
				key := "ck-" + string(from) + "-" + string(to)
				mustPutTenant(t, s, key, from)
				_, err := s.UpdateTenant(ctx, key, func(tn *realmhook.Tenant) error {
					tn.State = to
					return nil
				})
				want := realmhook.CheckTenantTransition(from, to) == nil
				got, gerr := s.GetTenant(ctx, key)
				mustNoErr(t, gerr, "get tenant")
				switch {
				case want && err != nil:
					t.Fatalf("UpdateTenant = %v, want allowed", err)
				case want && got.State != to:
					t.Fatalf("state after the update = %s, want %s", got.State, to)
				case !want && realmhook.ErrorCode(err) != realmhook.ECONFLICT:
					t.Fatalf("UpdateTenant = %v, want ECONFLICT", err)
				case !want && got.State != from:
					t.Fatalf("refused update wrote state %s", got.State)
				}
			})
		}
	}
}
