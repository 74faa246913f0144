package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
)

func testTenants(t *testing.T, h Harness) {
	t.Run("UpdateSerialises", func(t *testing.T) {
		s := h.Open(t)
		tn := newTenant("ck-1", realmhook.TenantActive)
		tn.Description = ""
		mustNoErr(t, s.PutTenant(t.Context(), tn), "PutTenant")
		// Concurrent read-modify-writes each append one letter: a lost update
		// would lose a letter.
		const writers = 8
		errs := make(chan error, writers)
		for i := 0; i < writers; i++ {
			go func() {
				_, err := s.UpdateTenant(t.Context(), "ck-1", func(tn *realmhook.Tenant) error {
					tn.Description += "x"
					return nil
				})
				errs <- err
			}()
		}
		for i := 0; i < writers; i++ {
			mustNoErr(t, <-errs, "UpdateTenant")
		}
		got, err := s.GetTenant(t.Context(), "ck-1")
		mustNoErr(t, err, "GetTenant")
		if len(got.Description) != writers {
			t.Fatalf("Description %q after %d concurrent updates: updates were lost", got.Description, writers)
		}
	})

	t.Run("UpdateReturnsAndWrites", func(t *testing.T) {
		s := h.Open(t)
		mustPutTenant(t, s, "ck-1", realmhook.TenantActive)
		upd, err := s.UpdateTenant(t.Context(), "ck-1", func(tn *realmhook.Tenant) error {
			tn.MigrationID = "m-1"
			return nil
		})
		mustNoErr(t, err, "UpdateTenant")
		got, err := s.GetTenant(t.Context(), "ck-1")
		mustNoErr(t, err, "GetTenant")
		if upd.MigrationID != "m-1" || got.MigrationID != "m-1" {
			t.Fatalf("after update: returned %q, stored %q", upd.MigrationID, got.MigrationID)
		}
	})

	t.Run("UpdateAbortsOnError", func(t *testing.T) {
		s := h.Open(t)
		mustPutTenant(t, s, "ck-1", realmhook.TenantActive)
		refused := realmhook.Errorf(realmhook.EMIGRATING, "no")
		_, err := s.UpdateTenant(t.Context(), "ck-1", func(tn *realmhook.Tenant) error {
			tn.SharedSecret = "changed"
			return refused
		})
		if err != refused {
			t.Fatalf("err %v, want the change's own error", err)
		}
		got, err := s.GetTenant(t.Context(), "ck-1")
		mustNoErr(t, err, "GetTenant")
		if got.SharedSecret == "changed" {
			t.Fatal("an aborted update was written")
		}
		_, err = s.UpdateTenant(t.Context(), "ck-1", func(tn *realmhook.Tenant) error {
			tn.ClientKey = "other"
			return nil
		})
		mustCode(t, err, realmhook.EINVALID)
		_, err = s.UpdateTenant(t.Context(), "nobody", func(*realmhook.Tenant) error { return nil })
		mustCode(t, err, realmhook.ENOTFOUND)
	})

	t.Run("RoundTrip", func(t *testing.T) {
		s := h.Open(t)
		want := newTenant("ck-1", realmhook.TenantMoved)
		want.MigrationID = "mig-7"
		want.MovedTo = "EU"
		want.PurgeAfter = base.Add(72 * time.Hour)
		mustNoErr(t, s.PutTenant(t.Context(), want), "PutTenant")

		got, err := s.GetTenant(t.Context(), "ck-1")
		mustNoErr(t, err, "GetTenant")
		mustSameTenant(t, got, want)
	})

	t.Run("ZeroTimesAndFalse", func(t *testing.T) {
		s := h.Open(t)
		want := &realmhook.Tenant{ClientKey: "ck-min", SharedSecret: "s", State: realmhook.TenantIncoming}
		mustNoErr(t, s.PutTenant(t.Context(), want), "PutTenant")
		got, err := s.GetTenant(t.Context(), "ck-min")
		mustNoErr(t, err, "GetTenant")
		mustSameTenant(t, got, want)
	})

	t.Run("Replace", func(t *testing.T) {
		s := h.Open(t)
		mustPutTenant(t, s, "ck-1", realmhook.TenantActive)
		want := newTenant("ck-1", realmhook.TenantUninstalled)
		want.SharedSecret = "rotated"
		want.BaseURL = "https://renamed.atlassian.net"
		want.Enabled = false
		want.UpdatedAt = base.Add(time.Hour)
		mustNoErr(t, s.PutTenant(t.Context(), want), "PutTenant again")

		got, err := s.GetTenant(t.Context(), "ck-1")
		mustNoErr(t, err, "GetTenant")
		mustSameTenant(t, got, want)
	})

	t.Run("FindTenants", func(t *testing.T) {
		s := h.Open(t)
		for _, tn := range []*realmhook.Tenant{
			{ClientKey: "forge-b", InstallationID: "inst-2", CloudID: "site-1", State: realmhook.TenantActive},
			{ClientKey: "forge-a", InstallationID: "inst-1", CloudID: "site-1", State: realmhook.TenantUninstalled},
			{ClientKey: "connect-c", InstallationID: "ari:cloud:ecosystem::installation/inst-3", SharedSecret: "s", State: realmhook.TenantActive},
			{ClientKey: "bare", State: realmhook.TenantActive},
		} {
			mustNoErr(t, s.PutTenant(t.Context(), tn), "PutTenant "+tn.ClientKey)
		}
		for _, tc := range []struct {
			name  string
			ids   []string
			cloud string
			want  []string
		}{
			{"ByInstallation", []string{"inst-1"}, "", []string{"forge-a"}},
			{"ByEitherForm", []string{"inst-3", "ari:cloud:ecosystem::installation/inst-3"}, "", []string{"connect-c"}},
			{"ByCloud", nil, "site-1", []string{"forge-a", "forge-b"}},
			{"Both", []string{"inst-3"}, "site-1", []string{"forge-a", "forge-b"}},
			{"EmptyMatchesNone", []string{""}, "", nil},
			{"Unknown", []string{"inst-9"}, "site-9", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.FindTenants(t.Context(), tc.ids, tc.cloud)
				mustNoErr(t, err, "FindTenants")
				if strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Errorf("FindTenants(%q, %q) = %q, want %q", tc.ids, tc.cloud, got, tc.want)
				}
			})
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := h.Open(t)
		_, err := s.GetTenant(t.Context(), "nobody")
		mustCode(t, err, realmhook.ENOTFOUND)
	})

	t.Run("ListByState", func(t *testing.T) {
		s := h.Open(t)
		states := map[string]realmhook.TenantState{
			"c": realmhook.TenantActive,
			"a": realmhook.TenantActive,
			"b": realmhook.TenantMoved,
			"B": realmhook.TenantActive,
			"d": realmhook.TenantUninstalled,
		}
		for ck, st := range states {
			mustPutTenant(t, s, ck, st)
		}
		for _, tc := range []struct {
			state realmhook.TenantState
			want  []string
		}{
			{realmhook.TenantActive, []string{"B", "a", "c"}},
			{realmhook.TenantMoved, []string{"b"}},
			{realmhook.TenantIncoming, nil},
		} {
			t.Run(string(tc.state), func(t *testing.T) {
				got, err := s.ListTenants(t.Context(), tc.state)
				mustNoErr(t, err, "ListTenants")
				var keys []string
				for _, tn := range got {
					if tn.State != tc.state {
						t.Errorf("tenant %s has state %s, want %s", tn.ClientKey, tn.State, tc.state)
					}
					mustSameTenant(t, tn, newTenant(tn.ClientKey, tc.state))
					keys = append(keys, tn.ClientKey)
				}
				if len(keys) != len(tc.want) {
					t.Fatalf("ListTenants(%s) = %v, want %v", tc.state, keys, tc.want)
				}
				for i := range keys {
					if keys[i] != tc.want[i] {
						t.Fatalf("ListTenants(%s) = %v, want %v", tc.state, keys, tc.want)
					}
				}
			})
		}
	})

	t.Run("PageAndCount", func(t *testing.T) {
		s := h.Open(t)
		for ck, st := range map[string]realmhook.TenantState{
			"a": realmhook.TenantActive, "b": realmhook.TenantMoved, "c": realmhook.TenantActive,
			"d": realmhook.TenantActive, "e": realmhook.TenantUninstalled,
		} {
			mustPutTenant(t, s, ck, st)
		}
		page := func(state realmhook.TenantState, after string, limit int) string {
			t.Helper()
			got, err := s.PageTenants(t.Context(), state, after, limit)
			mustNoErr(t, err, "PageTenants")
			var keys []string
			for _, tn := range got {
				mustSameTenant(t, tn, newTenant(tn.ClientKey, tn.State))
				keys = append(keys, tn.ClientKey)
			}
			return strings.Join(keys, ",")
		}
		for _, tc := range []struct {
			state realmhook.TenantState
			after string
			limit int
			want  string
		}{
			{realmhook.TenantNone, "", 2, "a,b"},
			{realmhook.TenantNone, "b", 2, "c,d"},
			{realmhook.TenantNone, "d", 2, "e"},
			{realmhook.TenantNone, "e", 2, ""},
			{realmhook.TenantActive, "", 2, "a,c"},
			{realmhook.TenantActive, "c", 2, "d"},
			{realmhook.TenantIncoming, "", 10, ""},
		} {
			if got := page(tc.state, tc.after, tc.limit); got != tc.want {
				t.Errorf("PageTenants(%q, after %q, %d) = %q, want %q", tc.state, tc.after, tc.limit, got, tc.want)
			}
		}
		counts, err := s.CountTenants(t.Context())
		mustNoErr(t, err, "CountTenants")
		want := map[realmhook.TenantState]int64{realmhook.TenantActive: 3, realmhook.TenantMoved: 1, realmhook.TenantUninstalled: 1}
		if fmt.Sprint(counts) != fmt.Sprint(want) {
			t.Errorf("CountTenants = %v, want %v", counts, want)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := h.Open(t)
		mustPutTenant(t, s, "ck-1", realmhook.TenantActive)
		mustPutTenant(t, s, "ck-2", realmhook.TenantActive)
		mustNoErr(t, s.DeleteTenant(t.Context(), "ck-1"), "DeleteTenant")
		_, err := s.GetTenant(t.Context(), "ck-1")
		mustCode(t, err, realmhook.ENOTFOUND)
		if _, err := s.GetTenant(t.Context(), "ck-2"); err != nil {
			t.Fatalf("other tenant gone after delete: %v", err)
		}
		mustNoErr(t, s.DeleteTenant(t.Context(), "ck-1"), "DeleteTenant of an absent tenant")
	})
}
