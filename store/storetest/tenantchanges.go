package storetest

import (
	"slices"
	"testing"

	"github.com/realmhook/realmhook"
)

// testTenantChanges: every kind of tenant write shows in TenantChanges, a
// property write does not, and a reader behind the kept log is told so.
func testTenantChanges(t *testing.T, h Harness) {
	t.Run("EveryWriteCounts", func(t *testing.T) {
		s := h.Open(t)
		ctx := t.Context()
		seq0, changed, complete, err := s.TenantChanges(ctx, 0)
		mustNoErr(t, err, "TenantChanges")
		if seq0 != 0 || len(changed) != 0 || !complete {
			t.Fatalf("fresh store: seq %d, changed %v, complete %v; want 0, none, true", seq0, changed, complete)
		}
		mustNoErr(t, s.PutTenant(ctx, newTenant("ck-a", realmhook.TenantActive)), "PutTenant a")
		mustNoErr(t, s.PutTenant(ctx, newTenant("ck-b", realmhook.TenantActive)), "PutTenant b")
		seq1, changed, complete, err := s.TenantChanges(ctx, seq0)
		mustNoErr(t, err, "TenantChanges")
		if seq1 <= seq0 || !complete || !slices.Contains(changed, "ck-a") || !slices.Contains(changed, "ck-b") {
			t.Fatalf("after two installs: seq %d (was %d), changed %v, complete %v", seq1, seq0, changed, complete)
		}

		// Nothing new: the same number, nothing changed.
		seq, changed, complete, err := s.TenantChanges(ctx, seq1)
		mustNoErr(t, err, "TenantChanges")
		if seq != seq1 || len(changed) != 0 || !complete {
			t.Fatalf("no writes: seq %d (was %d), changed %v, complete %v", seq, seq1, changed, complete)
		}

		// A property write is not a tenant write.
		_, err = s.PutProperty(ctx, "ck-a", "p", []byte(`1`))
		mustNoErr(t, err, "PutProperty")
		if seq, _, _, _ := s.TenantChanges(ctx, seq1); seq != seq1 {
			t.Fatalf("a property write moved the tenant sequence from %d to %d", seq1, seq)
		}

		steps := []struct {
			what  string
			write func() error
		}{
			{"PutTenant (replace)", func() error { return s.PutTenant(ctx, newTenant("ck-a", realmhook.TenantUninstalled)) }},
			{"UpdateTenant", func() error {
				_, err := s.UpdateTenant(ctx, "ck-a", func(tn *realmhook.Tenant) error { tn.MigrationID = "m1"; return nil })
				return err
			}},
			{"DeleteTenant", func() error { return s.DeleteTenant(ctx, "ck-a") }},
		}
		last := seq1
		for _, st := range steps {
			mustNoErr(t, st.write(), st.what)
			seq, changed, complete, err := s.TenantChanges(ctx, last)
			mustNoErr(t, err, "TenantChanges")
			if seq <= last || !complete || !slices.Equal(slices.Compact(changed), []string{"ck-a"}) {
				t.Fatalf("after %s: seq %d (was %d), changed %v, complete %v; want ck-a", st.what, seq, last, changed, complete)
			}
			last = seq
		}
	})

	t.Run("AheadOfTheStoreIsIncomplete", func(t *testing.T) {
		s := h.Open(t)
		_, _, complete, err := s.TenantChanges(t.Context(), 1<<40)
		mustNoErr(t, err, "TenantChanges")
		if complete {
			t.Fatal("a reader that has seen more than the store holds is told it missed nothing")
		}
	})
}
