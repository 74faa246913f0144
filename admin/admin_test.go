package admin_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/config"
	adminv1 "github.com/realmhook/realmhook/gen/realmhook/admin/v1"
	"github.com/realmhook/realmhook/server"
	"github.com/realmhook/realmhook/store"
)

func TestAdmin_Auth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", nil)
	var messages []string
	for name, token := range map[string]string{"Missing": "", "Wrong": "not-the-token-at-all", "Prefix": testToken[:10]} {
		_, err := newClient(e.url, token).ListRealms(t.Context(), connect.NewRequest(&adminv1.ListRealmsRequest{}))
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("%s token: %v, want unauthenticated", name, err)
		}
		messages = append(messages, err.Error())
	}
	for _, m := range messages[1:] {
		if m != messages[0] {
			t.Errorf("refusals differ: %q and %q", m, messages[0])
		}
	}

	t.Run("Metrics", func(t *testing.T) {
		for token, want := range map[string]int{"": http.StatusUnauthorized, "wrong-token-wrong-token": http.StatusUnauthorized, testToken: http.StatusOK} {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+"/metrics", nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("GET /metrics with %q: %d, want %d", token, resp.StatusCode, want)
			}
			if want == http.StatusOK && !strings.Contains(string(body), "realmhook_jwt_rejections_total") {
				t.Errorf("admin /metrics lacks realmhook's series")
			}
		}
	})
}

func TestAdmin_NotConfigured(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	for key, r := range cfg.Realms {
		r.Database = "sqlite:" + cfg.DataDir + "/" + key + ".db"
		cfg.Realms[key] = r
	}
	srv, err := server.New(t.Context(), cfg, server.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.AdminHandler() != nil {
		t.Fatal("AdminHandler without admin.listen is not nil")
	}
	// The public listener keeps /metrics.
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("public GET /metrics: %d", resp.StatusCode)
	}
}

func TestAdmin_Tenants(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend, nil)
			ctx := t.Context()
			for i := range 5 {
				e.mustTenant("EU", fmt.Sprintf("ck-%d", i), 1)
			}
			moving := e.mustTenant("EU", "ck-moving", 3)
			e.mustMigrate("EU", moving, "m-1", "US")

			t.Run("Realms", func(t *testing.T) {
				resp, err := e.client.ListRealms(ctx, connect.NewRequest(&adminv1.ListRealmsRequest{}))
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]*adminv1.Realm{}
				for _, r := range resp.Msg.GetRealms() {
					got[r.GetKey()] = r
				}
				eu, us := got["EU"], got["US"]
				if eu == nil || us == nil || got["global"] == nil {
					t.Fatalf("realms = %v, want global, US, EU", resp.Msg.GetRealms())
				}
				if c := eu.GetTenantCounts(); c["active"] != 5 || c["moved"] != 1 {
					t.Errorf("EU counts = %v, want 5 active, 1 moved", c)
				}
				if c := us.GetTenantCounts(); c["active"] != 1 {
					t.Errorf("US counts = %v, want 1 active", c)
				}
				for _, r := range got {
					h := r.GetHealth()
					if !h.GetHealthy() || h.GetProbedAt() == nil || len(h.GetChecks()) != 1 || h.GetChecks()[0].GetName() != "database" {
						t.Errorf("realm %s health = %v, want healthy with a database check and a probe time", r.GetKey(), h)
					}
				}
			})

			t.Run("Pages", func(t *testing.T) {
				var keys []string
				token := ""
				for pages := 0; ; pages++ {
					resp, err := e.client.ListTenants(ctx, connect.NewRequest(&adminv1.ListTenantsRequest{Realm: "EU", PageSize: 2, PageToken: token}))
					if err != nil {
						t.Fatal(err)
					}
					for _, tn := range resp.Msg.GetTenants() {
						keys = append(keys, tn.GetClientKey()+"="+tn.GetState())
					}
					if token = resp.Msg.GetNextPageToken(); token == "" {
						if pages != 2 {
							t.Errorf("%d pages, want 3", pages+1)
						}
						break
					}
				}
				want := "ck-0=active ck-1=active ck-2=active ck-3=active ck-4=active ck-moving=moved"
				if strings.Join(keys, " ") != want {
					t.Errorf("tenants = %v, want %s", keys, want)
				}
			})

			t.Run("ByState", func(t *testing.T) {
				resp, err := e.client.ListTenants(ctx, connect.NewRequest(&adminv1.ListTenantsRequest{Realm: "EU", State: "moved"}))
				if err != nil {
					t.Fatal(err)
				}
				if ts := resp.Msg.GetTenants(); len(ts) != 1 || ts[0].GetClientKey() != "ck-moving" || ts[0].GetMovedTo() != "US" {
					t.Errorf("moved tenants = %v, want ck-moving moved to US", ts)
				}
			})

			t.Run("BadRequests", func(t *testing.T) {
				for name, req := range map[string]*adminv1.ListTenantsRequest{
					"NoRealm":      {},
					"UnknownRealm": {Realm: "AU"},
					"BadState":     {Realm: "EU", State: "sleeping"},
					"BadPageSize":  {Realm: "EU", PageSize: 5000},
					"BadToken":     {Realm: "EU", PageToken: "!!"},
				} {
					_, err := e.client.ListTenants(ctx, connect.NewRequest(req))
					if connect.CodeOf(err) != connect.CodeInvalidArgument {
						t.Errorf("%s: %v, want invalid_argument", name, err)
					}
				}
			})

			t.Run("Get", func(t *testing.T) {
				resp, err := e.client.GetTenant(ctx, connect.NewRequest(&adminv1.GetTenantRequest{ClientKey: "ck-moving"}))
				if err != nil {
					t.Fatal(err)
				}
				states := map[string]string{}
				for _, r := range resp.Msg.GetRecords() {
					states[r.GetRealm()] = r.GetState()
				}
				if states["EU"] != "moved" || states["US"] != "active" || len(states) != 2 {
					t.Errorf("records = %v, want moved in EU and active in US", states)
				}
				ms := resp.Msg.GetMigrations()
				if len(ms) != 1 || ms[0].GetId() != "m-1" || ms[0].GetState() != "committed" || ms[0].GetProgress().GetRowsCopied() != 3 {
					t.Errorf("migrations = %v, want m-1 committed with 3 rows", ms)
				}
				if strings.Contains(resp.Msg.String(), "secret-of-") {
					t.Error("the admin API returned a shared secret")
				}
				_, err = e.client.GetTenant(ctx, connect.NewRequest(&adminv1.GetTenantRequest{ClientKey: "nobody"}))
				mustCode(t, err, connect.CodeNotFound)

				forge := &realmhook.Tenant{ClientKey: "ck-forge", SharedSecret: "x", State: realmhook.TenantActive,
					InstallationID: "ari:cloud:ecosystem::installation/7e1f", InstalledAt: t0, UpdatedAt: t0}
				if err := e.store("US").PutTenant(ctx, forge); err != nil {
					t.Fatal(err)
				}
				byInst, err := e.client.GetTenant(ctx, connect.NewRequest(&adminv1.GetTenantRequest{InstallationId: forge.InstallationID}))
				if err != nil || len(byInst.Msg.GetRecords()) != 1 || byInst.Msg.GetRecords()[0].GetClientKey() != "ck-forge" {
					t.Errorf("by installation: %v, %v; want ck-forge", byInst, err)
				}
				_, err = e.client.GetTenant(ctx, connect.NewRequest(&adminv1.GetTenantRequest{InstallationId: "ari:cloud:ecosystem::installation/none"}))
				mustCode(t, err, connect.CodeNotFound)
			})

			t.Run("Migration", func(t *testing.T) {
				resp, err := e.client.GetMigration(ctx, connect.NewRequest(&adminv1.GetMigrationRequest{Id: "m-1"}))
				if err != nil {
					t.Fatal(err)
				}
				var path []string
				for _, ev := range resp.Msg.GetEvents() {
					path = append(path, ev.GetTo())
				}
				if got := strings.Join(path, " "); got != "scheduled copying verifying ready-to-commit committing committed" {
					t.Errorf("events = %s", got)
				}
				if p := resp.Msg.GetMigration().GetProgress(); p.GetCopyStartedAt() == nil || p.GetPercent() != 100 {
					t.Errorf("progress = %v, want 100%% with a copy start", p)
				}
				_, err = e.client.GetMigration(ctx, connect.NewRequest(&adminv1.GetMigrationRequest{Id: "m-404"}))
				mustCode(t, err, connect.CodeNotFound)

				list, err := e.client.ListMigrations(ctx, connect.NewRequest(&adminv1.ListMigrationsRequest{States: []string{"committed"}}))
				if err != nil {
					t.Fatal(err)
				}
				if ms := list.Msg.GetMigrations(); len(ms) != 1 || ms[0].GetSourceRealm() != "EU" {
					t.Errorf("committed migrations = %v, want m-1 from EU, once", ms)
				}
				_, err = e.client.ListMigrations(ctx, connect.NewRequest(&adminv1.ListMigrationsRequest{States: []string{"done"}}))
				mustCode(t, err, connect.CodeInvalidArgument)
			})

			t.Run("Purge", func(t *testing.T) {
				_, err := e.client.PurgeTenant(ctx, connect.NewRequest(&adminv1.PurgeTenantRequest{Realm: "EU", ClientKey: "ck-0"}))
				mustCode(t, err, connect.CodeFailedPrecondition)
				resp, err := e.client.PurgeTenant(ctx, connect.NewRequest(&adminv1.PurgeTenantRequest{Realm: "EU", ClientKey: "ck-moving"}))
				if err != nil || !resp.Msg.GetPurged() {
					t.Fatalf("purge = %v, %v; want purged", resp, err)
				}
				if _, err := e.store("EU").GetTenant(ctx, "ck-moving"); realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
					t.Errorf("after purge the EU record is still there: %v", err)
				}
				if n, err := e.store("US").CountRows(ctx, store.PropertiesTable, "ck-moving"); err != nil || n != 3 {
					t.Errorf("purge touched the target: %d rows, %v", n, err)
				}
			})
		})
	}
}
