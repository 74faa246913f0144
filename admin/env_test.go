package admin_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/config"
	"github.com/realmhook/realmhook/gen/realmhook/admin/v1/adminv1connect"
	"github.com/realmhook/realmhook/integration/pgtest"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/server"
	"github.com/realmhook/realmhook/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const testToken = "admin-token-0123456789"

// backends are the databases every admin test runs on.
var backends = []string{"sqlite", "postgres"}

// env is a realmhook server (realms global, US, EU on one backend) with its
// admin API on a test listener.
type env struct {
	t      *testing.T
	srv    *server.Server
	url    string
	client adminv1connect.AdminServiceClient
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEnv starts the server; edit changes the config first.
func newEnv(t *testing.T, backend string, edit func(*config.Config)) *env {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	for key, r := range cfg.Realms {
		if backend == "postgres" {
			r.Database = pgtest.NewDatabase(t)
		} else {
			r.Database = "sqlite:" + filepath.Join(cfg.DataDir, strings.ToLower(key)+".db")
		}
		cfg.Realms[key] = r
	}
	cfg.Secrets.Plaintext = backend == "postgres"
	cfg.Admin = config.Admin{Listen: "127.0.0.1:0", Token: testToken, ProbeInterval: 20 * time.Millisecond}
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	srv, err := server.New(t.Context(), cfg, server.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		// Stopped early (a quick test), Run may still be checking tables.
		if err := srv.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("server.Run: %v", err)
		}
	}()
	hs := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(func() {
		hs.Close()
		cancel()
		<-ran
		_ = srv.Close()
	})
	return &env{t: t, srv: srv, url: hs.URL, client: newClient(hs.URL, testToken)}
}

// newClient is an admin API client sending token.
func newClient(url, token string) adminv1connect.AdminServiceClient {
	return adminv1connect.NewAdminServiceClient(http.DefaultClient, url,
		connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
			return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
				if token != "" {
					req.Header().Set("Authorization", "Bearer "+token)
				}
				return next(ctx, req)
			}
		})))
}

func (e *env) store(realm string) store.Store {
	e.t.Helper()
	r, ok := e.srv.Realms().Get(realm)
	if !ok || !r.Served() {
		e.t.Fatalf("realm %s is not served", realm)
	}
	return r.Store
}

var t0 = time.Now().UTC().Truncate(time.Second)

// mustTenant installs an active tenant in realm with n properties.
func (e *env) mustTenant(realm, clientKey string, n int) *realmhook.Tenant {
	e.t.Helper()
	tn := &realmhook.Tenant{
		ClientKey: clientKey, SharedSecret: "secret-of-" + clientKey, BaseURL: "https://" + clientKey + ".atlassian.net",
		ProductType: "jira", State: realmhook.TenantActive, Enabled: true, InstalledAt: t0, UpdatedAt: t0,
	}
	st := e.store(realm)
	if err := st.PutTenant(e.t.Context(), tn); err != nil {
		e.t.Fatalf("PutTenant: %v", err)
	}
	for i := range n {
		if _, err := st.PutProperty(e.t.Context(), clientKey, "k"+string(rune('a'+i%26))+strings.Repeat("x", i/26), []byte(`{"n":1}`)); err != nil {
			e.t.Fatalf("PutProperty: %v", err)
		}
	}
	return tn
}

// mustMigrate moves a tenant from realm to `to` with the real engine, as the
// host's hooks would, and commits it.
func (e *env) mustMigrate(realm string, tn *realmhook.Tenant, id, to string) {
	e.t.Helper()
	ctx := e.t.Context()
	migs := e.srv.Migrations()
	req := migration.Request{MigrationID: id, Location: to, StartTime: time.Now(), EndTime: time.Now().Add(time.Hour)}
	if _, err := migs.Schedule(ctx, realm, tn, req); err != nil {
		e.t.Fatalf("Schedule: %v", err)
	}
	if _, err := migs.Start(ctx, realm, tn, req); err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := migs.Wait(wctx, realm, tn.ClientKey, id, realmhook.MigrationReadyToCommit); err != nil {
		e.t.Fatalf("Wait: %v", err)
	}
	if _, err := migs.Commit(ctx, realm, tn.ClientKey, id); err != nil {
		e.t.Fatalf("Commit: %v", err)
	}
}

// mustEventually polls cond until it holds or 20 s pass.
func mustEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustCode(t *testing.T, err error, want connect.Code) {
	t.Helper()
	if connect.CodeOf(err) != want {
		t.Fatalf("error = %v, want code %v", err, want)
	}
}
