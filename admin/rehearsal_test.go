package admin_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/realmhook/realmhook"
	adminv1 "github.com/realmhook/realmhook/gen/realmhook/admin/v1"
	"github.com/realmhook/realmhook/store"
)

// tenantRows is the tenant's record and every property, as text.
func (e *env) tenantRows(realm, clientKey string) string {
	e.t.Helper()
	st := e.store(realm)
	t, err := st.GetTenant(e.t.Context(), clientKey)
	if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
		return "none"
	} else if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(t.ClientKey + " " + string(t.State) + " " + t.MigrationID + " " + t.UpdatedAt.String() + "\n")
	err = st.ScanRows(e.t.Context(), store.PropertiesTable, []string{"client_key", "key", "value"}, clientKey, func(r store.Row) error {
		for _, v := range r {
			b.WriteString(strings.TrimSpace(strings.ReplaceAll(string(toBytes(v)), "\n", " ")) + "|")
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return b.String()
}

func toBytes(v any) []byte {
	switch x := v.(type) {
	case []byte:
		return x
	case string:
		return []byte(x)
	}
	return fmt.Appendf(nil, "%v", v)
}

func TestAdmin_Rehearsal(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend, nil)
			ctx := t.Context()
			e.mustTenant("EU", "acme", 40)
			before := e.tenantRows("EU", "acme")

			start, err := e.client.StartRehearsal(ctx, connect.NewRequest(&adminv1.StartRehearsalRequest{
				ClientKey: "acme", TargetRealm: "US", Window: durationpb.New(90 * time.Minute)}))
			if err != nil {
				t.Fatal(err)
			}
			r := start.Msg.GetRehearsal()
			if r.GetSourceRealm() != "EU" || r.GetTargetRealm() != "US" {
				t.Fatalf("rehearsal = %v", r)
			}
			mustEventually(t, "the rehearsal to end", func() bool {
				resp, err := e.client.GetRehearsal(ctx, connect.NewRequest(&adminv1.GetRehearsalRequest{Id: r.GetId()}))
				if err != nil {
					t.Fatal(err)
				}
				r = resp.Msg.GetRehearsal()
				return r.GetState() != "running"
			})
			if r.GetState() != "passed" || !r.GetVerified() || !r.GetFitsWindow() || r.GetProgress().GetRowsCopied() != 40 || r.GetDuration() == nil {
				t.Fatalf("rehearsal = %v; want passed, verified, fitting, 40 rows", r)
			}
			if after := e.tenantRows("EU", "acme"); after != before {
				t.Errorf("source changed:\n%s\n%s", before, after)
			}
			if got := e.tenantRows("US", "acme"); got != "none" {
				t.Errorf("target holds the tenant after the rehearsal: %s", got)
			}
			if n, err := e.store("US").CountRows(ctx, store.PropertiesTable, "acme"); err != nil || n != 0 {
				t.Errorf("target holds %d rows, %v", n, err)
			}
			list, err := e.client.ListRehearsals(ctx, connect.NewRequest(&adminv1.ListRehearsalsRequest{}))
			if err != nil || len(list.Msg.GetRehearsals()) != 1 {
				t.Errorf("ListRehearsals = %v, %v", list, err)
			}

			for name, req := range map[string]*adminv1.StartRehearsalRequest{
				"NoTenant":   {TargetRealm: "US"},
				"SameRealm":  {ClientKey: "acme", TargetRealm: "EU"},
				"BadWindow":  {ClientKey: "acme", TargetRealm: "US", Window: durationpb.New(-time.Minute)},
				"NoSuchTarg": {ClientKey: "acme", TargetRealm: "JP"},
			} {
				_, err := e.client.StartRehearsal(ctx, connect.NewRequest(req))
				if connect.CodeOf(err) != connect.CodeInvalidArgument {
					t.Errorf("%s: %v, want invalid_argument", name, err)
				}
			}
			_, err = e.client.StartRehearsal(ctx, connect.NewRequest(&adminv1.StartRehearsalRequest{ClientKey: "nobody", TargetRealm: "US"}))
			mustCode(t, err, connect.CodeNotFound)
			_, err = e.client.GetRehearsal(ctx, connect.NewRequest(&adminv1.GetRehearsalRequest{Id: "rehearsal-0"}))
			mustCode(t, err, connect.CodeNotFound)
		})
	}
}
