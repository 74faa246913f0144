package realmhook_test

import (
	"testing"

	"github.com/realmhook/realmhook"
)

func TestCheckTenantTransition(t *testing.T) {
	// The allowed moves, written out independently of the table; "none" is no
	// record. Keeping the state is always allowed for a record.
	allowed := map[string]bool{
		"none>active": true, "none>incoming": true,
		"active>active": true, "active>uninstalled": true, "active>moved": true, "active>none": true,
		"incoming>incoming": true, "incoming>active": true, "incoming>none": true,
		"moved>moved": true, "moved>active": true, "moved>incoming": true, "moved>purging": true,
		"uninstalled>uninstalled": true, "uninstalled>active": true,
		"purging>purging": true, "purging>none": true,
	}
	states := append([]realmhook.TenantState{realmhook.TenantNone}, realmhook.TenantStates...)
	if len(states) != 6 {
		t.Fatalf("%d tenant states, want 6", len(states))
	}
	name := func(s realmhook.TenantState) string {
		if s == realmhook.TenantNone {
			return "none"
		}
		return string(s)
	}
	for _, from := range states {
		for _, to := range states {
			pair := name(from) + ">" + name(to)
			t.Run(pair, func(t *testing.T) {
				err := realmhook.CheckTenantTransition(from, to)
				if allowed[pair] && err != nil {
					t.Fatalf("CheckTenantTransition = %v, want allowed", err)
				} else if !allowed[pair] && realmhook.ErrorCode(err) != realmhook.ECONFLICT {
					t.Fatalf("CheckTenantTransition = %v, want ECONFLICT", err)
				}
			})
		}
	}
	t.Run("UnknownState", func(t *testing.T) {
		for _, pair := range [][2]realmhook.TenantState{{"paused", realmhook.TenantActive}, {realmhook.TenantActive, "paused"}} {
			if err := realmhook.CheckTenantTransition(pair[0], pair[1]); realmhook.ErrorCode(err) != realmhook.EINVALID {
				t.Errorf("CheckTenantTransition(%q, %q) = %v, want EINVALID", pair[0], pair[1], err)
			}
		}
	})
}

func TestTenant_FrozenAndMovedAway(t *testing.T) {
	for _, s := range realmhook.TenantStates {
		tn := realmhook.Tenant{State: s}
		// Being purged is a state of its own: no migration holds the record.
		if tn.Frozen() {
			t.Errorf("%s record without a migration is frozen", s)
		}
		if want := s == realmhook.TenantMoved || s == realmhook.TenantPurging; tn.MovedAway() != want {
			t.Errorf("%s: MovedAway = %v, want %v", s, !want, want)
		}
	}
}
