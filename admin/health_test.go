package admin_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"

	"github.com/realmhook/realmhook/config"
	adminv1 "github.com/realmhook/realmhook/gen/realmhook/admin/v1"
	"github.com/realmhook/realmhook/integration/pgtest"
	"github.com/realmhook/realmhook/server"
)

// realmHealth returns realm's health from ListRealms.
func (e *env) realmHealth(realm string) *adminv1.Health {
	e.t.Helper()
	resp, err := e.client.ListRealms(e.t.Context(), connect.NewRequest(&adminv1.ListRealmsRequest{}))
	if err != nil {
		e.t.Fatalf("ListRealms: %v", err)
	}
	for _, r := range resp.Msg.GetRealms() {
		if r.GetKey() == realm {
			return r.GetHealth()
		}
	}
	e.t.Fatalf("no realm %s", realm)
	return nil
}

// waitHealth polls until realm's health is as wanted, and returns it.
func (e *env) waitHealth(realm string, healthy bool) *adminv1.Health {
	e.t.Helper()
	var h *adminv1.Health
	mustEventually(e.t, "realm "+realm+" to be probed healthy="+map[bool]string{true: "true", false: "false"}[healthy], func() bool {
		h = e.realmHealth(realm)
		return h.GetHealthy() == healthy
	})
	return h
}

func failedCheck(h *adminv1.Health) string {
	for _, c := range h.GetChecks() {
		if !c.GetOk() {
			return c.GetName() + ": " + c.GetDetail()
		}
	}
	return ""
}

func TestAdmin_HealthDatabaseStops(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "sqlite", nil)
		e.waitHealth("EU", true)
		// The realm's database goes away under the running server.
		if err := e.store("EU").Close(); err != nil {
			t.Fatal(err)
		}
		h := e.waitHealth("EU", false)
		if got := failedCheck(h); !strings.HasPrefix(got, "database: ") {
			t.Errorf("failed check = %q, want the database's", got)
		}
		if !e.realmHealth("US").GetHealthy() {
			t.Error("US turned unhealthy with EU's database")
		}
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		var euURL string
		e := newEnv(t, "postgres", func(c *config.Config) { euURL = c.Realms["EU"].Database })
		first := e.waitHealth("EU", true).GetProbedAt().AsTime()
		// The prober runs in the background (Run has checked the tables):
		// the probe time moves on its own.
		mustEventually(t, "a second probe", func() bool { return e.realmHealth("EU").GetProbedAt().AsTime().After(first) })
		// The database stops taking connections and drops those it has.
		u, err := url.Parse(euURL)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(u.Path, "/")
		conn, err := pgx.Connect(t.Context(), pgtest.AdminURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		for _, sql := range []string{
			"ALTER DATABASE " + pgx.Identifier{name}.Sanitize() + " ALLOW_CONNECTIONS false",
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + name + "'",
		} {
			if _, err := conn.Exec(t.Context(), sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		h := e.waitHealth("EU", false)
		if !h.GetProbedAt().AsTime().After(first) {
			t.Errorf("probe time %v did not move past %v", h.GetProbedAt().AsTime(), first)
		}
		if got := failedCheck(h); !strings.HasPrefix(got, "database: ") {
			t.Errorf("failed check = %q, want the database's", got)
		}
		if _, err := conn.Exec(t.Context(), "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" ALLOW_CONNECTIONS true"); err != nil {
			t.Fatal(err)
		}
		e.waitHealth("EU", true)
	})
}

// A realm served by another process is probed at its internalUrl: healthy
// while that process answers, unhealthy once it stops.
func TestAdmin_HealthRemoteProcessStops(t *testing.T) {
	t.Parallel()
	remoteCfg := config.Default()
	remoteCfg.DataDir = t.TempDir()
	for key, r := range remoteCfg.Realms {
		r.Database = "sqlite:" + remoteCfg.DataDir + "/" + key + ".db"
		remoteCfg.Realms[key] = r
	}
	remoteCfg.Serve = []string{"EU"}
	remoteCfg.Internal.Secret = "internal-secret-0123456789"
	for _, key := range []string{"global", "US"} {
		remoteCfg.Realms[key] = config.Realm{BaseURL: remoteCfg.Realms[key].BaseURL, InternalURL: "http://127.0.0.1:1"}
	}
	remote, err := server.New(t.Context(), remoteCfg, server.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	remoteHTTP := httptest.NewServer(remote.Handler())
	defer remoteHTTP.Close()

	e := newEnv(t, "sqlite", func(c *config.Config) {
		c.Serve = []string{"global", "US"}
		// A realm this process does not serve: no database, its process
		// at its internalUrl.
		c.Realms["EU"] = config.Realm{BaseURL: c.Realms["EU"].BaseURL, InternalURL: remoteHTTP.URL}
		c.Internal.Secret = "internal-secret-0123456789"
	})
	h := e.waitHealth("EU", true)
	if cs := h.GetChecks(); len(cs) != 1 || cs[0].GetName() != "internal_api" {
		t.Fatalf("checks of a remote realm = %v, want the internal API's alone", cs)
	}
	remoteHTTP.Close()
	h = e.waitHealth("EU", false)
	if got := failedCheck(h); !strings.HasPrefix(got, "internal_api: ") {
		t.Errorf("failed check = %q, want the internal API's", got)
	}
}
