package integration

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/hostsim"
	"github.com/realmhook/realmhook/identitytoken"
	"github.com/realmhook/realmhook/integration/pgtest"
	"github.com/realmhook/realmhook/migration"
)

// nodeAppDir is the example partner app the gateway test runs.
const nodeAppDir = "../examples/node-app"

// nodeAppIdentitySecret is gateway.identitySecret in the gateway test: realmhook
// signs X-Realmhook-Identity with it, the node app verifies and signs its
// egress tokens with it.
const nodeAppIdentitySecret = "node-app-identity-secret-0123456789abcdef"

// mustNode returns the node binary, with the example's packages installed
// (`make node-example`). Without them the test skips, but under CI (CI set)
// it fails: .ci/run installs both.
func mustNode(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(nodeAppDir, "node_modules", "express", "package.json"))
	}
	if err != nil {
		msg := fmt.Sprintf("the node example is not runnable (%v); install node and run `make node-example`", err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node
}

// nodeApp is one running instance of examples/node-app.
type nodeApp struct {
	URL    string
	out    *syncBuffer
	cmd    *exec.Cmd
	exited chan struct{}
}

var listeningLine = regexp.MustCompile(`node-app listening on (http://\S+)`)

// mustStartNodeApp starts the example app on a free port, on database db,
// and waits until it listens.
func mustStartNodeApp(t testing.TB, node, db, egressURL string) *nodeApp {
	t.Helper()
	a := &nodeApp{out: &syncBuffer{}, exited: make(chan struct{})}
	a.cmd = exec.Command(node, "server.js")
	a.cmd.Dir = nodeAppDir
	a.cmd.Env = append(os.Environ(),
		"PORT=0", "HOST=127.0.0.1",
		"DATABASE_URL="+db,
		"REALMHOOK_IDENTITY_SECRET="+nodeAppIdentitySecret,
		"REALMHOOK_EGRESS_URL="+egressURL,
	)
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(10 * time.Second):
			_ = a.cmd.Process.Kill()
			<-a.exited
		}
		if t.Failed() {
			t.Logf("node app %s output:\n%s", a.URL, a.out.String())
		}
	})
	waitFor(t, 30*time.Second, "the node app to listen", func() bool {
		select {
		case <-a.exited:
			t.Fatalf("the node app exited before it listened:\n%s", a.out.String())
		default:
		}
		m := listeningLine.FindStringSubmatch(a.out.String())
		if m == nil {
			return false
		}
		a.URL = m[1]
		return true
	})
	return a
}

// hostUser is the account id the host puts in its tokens' sub.
const hostUser = "557058:node-app-user"

// hostToken signs a token as the host product does for a page load (sub,
// context, qsh for the URL) or, with qsh connectjwt.ContextQSH, as
// AP.context.getToken() does for the page's own calls.
func hostToken(t testing.TB, ten tenant, qsh string) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss":     ten.ClientKey,
		"sub":     hostUser,
		"iat":     now.Unix(),
		"exp":     now.Add(3 * time.Minute).Unix(),
		"qsh":     qsh,
		"context": map[string]any{"jira": map[string]any{"project": map[string]any{"key": "NODE"}}},
	}).SignedString([]byte(ten.Secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// pageLoad is the host loading a page module: GET with ?jwt= for that URL.
func pageLoad(t testing.TB, s *server, ten tenant, realm, path string) response {
	t.Helper()
	base := s.realmURL(realm)
	req := httptest.NewRequest(http.MethodGet, base+path, nil)
	basePath, _ := url.Parse(base)
	qsh := connectjwt.RequestQSH(req, basePath.EscapedPath())
	return do(t, http.MethodGet, base+path+"?jwt="+hostToken(t, ten, qsh), nil, nil)
}

// frontendCall is the page's script calling the app with a context token.
func frontendCall(t testing.TB, s *server, ten tenant, realm, method, path string, body []byte, extra http.Header) response {
	t.Helper()
	h := http.Header{"Authorization": {"JWT " + hostToken(t, ten, connectjwt.ContextQSH)}}
	for k, v := range extra {
		h[k] = v
	}
	return do(t, method, s.realmURL(realm)+path, h, body)
}

// mustMintIdentity mints the token realmhook sends the app, for calling an
// instance of the app directly.
func mustMintIdentity(t testing.TB, id identitytoken.Identity) string {
	t.Helper()
	key, err := identitytoken.NewKey(nodeAppIdentitySecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := key.Mint(id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// appEvent is a lifecycle event as the app recorded it.
type appEvent struct {
	ID, Type, ClientKey, Realm, MigrationID, From, To string
}

// appEvents asks an instance of the app directly which events it received
// for the tenant.
func (a *nodeApp) appEvents(t testing.TB, clientKey, realm string) []appEvent {
	t.Helper()
	tok := mustMintIdentity(t, identitytoken.Identity{ClientKey: clientKey, Realm: realm})
	r := do(t, http.MethodGet, a.URL+"/api/events", http.Header{identitytoken.Header: {tok}}, nil)
	mustStatus(t, r, http.StatusOK, "events of the app at "+a.URL)
	var out struct{ Events []appEvent }
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("events: %v\n%s", err, r.Body)
	}
	return out.Events
}

func eventTypes(evs []appEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// waitEvent waits until the app received an event of type typ for the tenant.
func (a *nodeApp) waitEvent(t testing.TB, clientKey, realm, typ string) appEvent {
	t.Helper()
	var got appEvent
	waitFor(t, 30*time.Second, "event "+typ+" at the app at "+a.URL, func() bool {
		for _, e := range a.appEvents(t, clientKey, realm) {
			if e.Type == typ {
				got = e
				return true
			}
		}
		return false
	})
	return got
}

// notesBody is the app's answer to GET /api/notes.
type notesBody struct {
	ClientKey string
	Realm     string
	Frozen    bool
	Notes     []struct{ ID, Body string }
}

func decodeNotes(t testing.TB, r response) notesBody {
	t.Helper()
	var n notesBody
	if err := json.Unmarshal(r.Body, &n); err != nil {
		t.Fatalf("notes: %v\n%s", err, r.Body)
	}
	return n
}

// TestNodeApp_BehindGateway runs examples/node-app, a real Node program,
// behind realmhook's gateway: one instance per realm, each on its realm's
// PostgreSQL database, and the host emulator installing, loading the page
// and migrating the tenant EU → US.
func TestNodeApp_BehindGateway(t *testing.T) {
	node := mustNode(t)
	// Every realm has its database and its instance of the app, global
	// too: every served realm needs the app's table.
	dbs := map[string]string{}
	egress := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	apps := map[string]*nodeApp{}
	upstreams := map[string]string{}
	for _, realm := range []string{"global", "EU", "US"} {
		dbs[realm] = pgtest.NewDatabase(t)
		apps[realm] = mustStartNodeApp(t, node, dbs[realm], "http://"+egress)
		upstreams[realm] = apps[realm].URL
	}

	state := filepath.Join(t.TempDir(), "host.json")
	keysURL := mustHostKeys(t, state)
	mustHostProduct(t, state)
	descriptor, err := filepath.Abs(filepath.Join(nodeAppDir, "atlassian-connect.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := mustStartServer(t, serverConfig{
		KeysURL:   keysURL,
		Databases: dbs,
		Upstreams: upstreams,
		Env: []string{
			"REALMHOOK_IDENTITY_SECRET=" + nodeAppIdentitySecret,
			// Holds the copy after its first batch, so the test sees the
			// tenant mid-copy for as long as it takes.
			migration.PauseEnv + "=copy-batch=3s",
		},
		Extra: fmt.Sprintf(`app:
  descriptor: %s
gateway:
  identitySecret: ${REALMHOOK_IDENTITY_SECRET}
  public: ["/static/**"]
  egressListen: %s
tables:
  - name: notes
    tenantColumn: client_key
    key: [id]
migration:
  batchRows: 2
`, descriptor, egress),
	})

	// The host installs a tenant into EU: the EU app hears of it.
	clientKey := "node-" + randomHex(6)
	mustRealmctl(t, "host", "install", "--state", state, "--descriptor", s.Base+"/atlassian-connect.json", "--realm", "EU", "--client-key", clientKey)
	ten := mustHostTenant(t, state, clientKey)

	t.Run("Descriptor", func(t *testing.T) {
		r := do(t, http.MethodGet, s.Base+"/atlassian-connect.json", nil, nil)
		mustStatus(t, r, http.StatusOK, "descriptor")
		var d struct {
			Modules struct {
				GeneralPages []struct{ Key, URL string }
			}
			RegionBaseURLs map[string]string `json:"regionBaseUrls"`
		}
		if err := json.Unmarshal(r.Body, &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Modules.GeneralPages) != 1 || d.Modules.GeneralPages[0].URL != "/page" || d.RegionBaseURLs["EU"] != s.realmURL("EU") {
			t.Fatalf("descriptor does not publish the app's page module under each realm:\n%s", r.Body)
		}
	})

	t.Run("PageLoad", func(t *testing.T) {
		r := pageLoad(t, s, ten, "EU", "/page")
		mustStatus(t, r, http.StatusOK, "page load")
		if !strings.Contains(string(r.Body), "Kept in realm EU.") || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("page: %s\n%s", r.Header.Get("Content-Type"), r.Body)
		}
		// The host emulator calls any module path the same way.
		if out := mustRealmctl(t, "host", "call", "--state", state, "--client-key", clientKey, "GET", "/page"); !strings.Contains(out, "Kept in realm EU.") {
			t.Fatalf("realmctl host call GET /page:\n%s", out)
		}
		// The page's stylesheet is public: no token, and no identity.
		r = do(t, http.MethodGet, s.realmURL("EU")+"/static/page.css", nil, nil)
		mustStatus(t, r, http.StatusOK, "public stylesheet")
		// Without a host token nothing reaches the app.
		r = do(t, http.MethodGet, s.realmURL("EU")+"/page", nil, nil)
		mustStatus(t, r, http.StatusUnauthorized, "page without a token")
	})

	t.Run("FrontendCallWithForgedIdentity", func(t *testing.T) {
		forged := mustMintIdentity(t, identitytoken.Identity{ClientKey: "someone-else", Realm: "US"})
		r := frontendCall(t, s, ten, "EU", http.MethodGet, "/api/whoami", nil, http.Header{
			identitytoken.Header: {forged},
			"X-Realmhook-Realm":  {"US"},
		})
		mustStatus(t, r, http.StatusOK, "whoami")
		var who struct {
			Identity struct {
				Iss, Sub, Realm, User string
				Context               map[string]any
				Frozen                bool
				Iat, Exp              int64
				Jti                   string
			}
			RealmhookHeaders []string
		}
		if err := json.Unmarshal(r.Body, &who); err != nil {
			t.Fatal(err)
		}
		id := who.Identity
		if id.Iss != "realmhook" || id.Sub != clientKey || id.Realm != "EU" || id.User != hostUser || id.Frozen || id.Jti == "" || id.Exp-id.Iat != 60 {
			t.Fatalf("identity the app verified: %+v", id)
		}
		if id.Context["jira"] == nil {
			t.Fatalf("identity lacks the host token's context: %+v", id)
		}
		if !slices.Equal(who.RealmhookHeaders, []string{"x-realmhook-identity"}) {
			t.Fatalf("X-Realmhook-* headers that reached the app: %v (a client's must be stripped)", who.RealmhookHeaders)
		}
		// The app itself refuses anything but realmhook's token.
		for name, h := range map[string]http.Header{
			"none":        nil,
			"wrongSecret": {identitytoken.Header: {mustForeignIdentity(t, clientKey)}},
			"garbage":     {identitytoken.Header: {"x.y.z"}},
		} {
			r := do(t, http.MethodGet, apps["EU"].URL+"/api/whoami", h, nil)
			mustStatus(t, r, http.StatusUnauthorized, "direct call with identity "+name)
		}
	})

	var migrationID string
	t.Run("WritesAndMigration", func(t *testing.T) {
		var ids []string
		for i := 1; i <= 5; i++ {
			r := frontendCall(t, s, ten, "EU", http.MethodPost, "/api/notes", []byte(fmt.Sprintf(`{"body":"note %d"}`, i)), nil)
			mustStatus(t, r, http.StatusCreated, "write a note")
			var n struct{ ID string }
			_ = json.Unmarshal(r.Body, &n)
			ids = append(ids, n.ID)
		}
		mustStatus(t, frontendCall(t, s, ten, "EU", http.MethodPost, "/api/notes", []byte(`{"body":""}`), nil), http.StatusBadRequest, "empty note")

		m := newHostMigration(t, s, ten, "EU", "US", time.Hour)
		outBefore := len(s.Output())
		m.mustHook("schedule")
		m.mustHook("start")
		waitFor(t, 60*time.Second, "the copy to pause after its first batch", func() bool {
			return strings.Contains(s.Output()[outBefore:], migration.PauseEnv+": paused at copy-batch")
		})
		if st := m.status()["status"]; st != "copying" {
			t.Fatalf("status while the copy is held: %v", st)
		}
		r := frontendCall(t, s, ten, "EU", http.MethodPost, "/api/notes", []byte(`{"body":"during the copy"}`), nil)
		mustStatus(t, r, http.StatusConflict, "write during the copy")
		if r.JSON(t)["error"] != "tenant_migrating" {
			t.Fatalf("write during the copy: %s", r.Body)
		}
		r = frontendCall(t, s, ten, "EU", http.MethodGet, "/api/notes", nil, nil)
		mustStatus(t, r, http.StatusOK, "read during the copy")
		if n := decodeNotes(t, r); !n.Frozen || len(n.Notes) != len(ids) {
			t.Fatalf("read during the copy: %s", r.Body)
		}

		m.waitStatus(60*time.Second, "ready-to-commit")
		if got := m.mustHook("commit")["status"]; got != "committed" {
			t.Fatalf("commit: %v", got)
		}

		r = frontendCall(t, s, ten, "US", http.MethodGet, "/api/notes", nil, nil)
		mustStatus(t, r, http.StatusOK, "read in US")
		n := decodeNotes(t, r)
		var got []string
		for _, note := range n.Notes {
			got = append(got, note.ID)
		}
		if n.Realm != "US" || n.Frozen || !slices.Equal(got, ids) {
			t.Fatalf("US app serves %s, want notes %v", r.Body, ids)
		}
		mustStatus(t, frontendCall(t, s, ten, "US", http.MethodPost, "/api/notes", []byte(`{"body":"in US"}`), nil), http.StatusCreated, "write in US")
		r = pageLoad(t, s, ten, "EU", "/page")
		mustStatus(t, r, http.StatusMisdirectedRequest, "page in EU after commit")
		if r.JSON(t)["correctBaseUrl"] != s.realmURL("US") {
			t.Fatalf("421 body %s", r.Body)
		}
		migrationID = m.id
	})

	// What each instance of the app heard, in order: the EU app of the
	// install, the freeze and the tenant leaving; the US app of its arrival;
	// the global app of nothing.
	t.Run("Events", func(t *testing.T) {
		apps["US"].waitEvent(t, clientKey, "US", "migration.committed")
		apps["EU"].waitEvent(t, clientKey, "EU", "migration.committed")
		want := map[string][]string{
			"EU":     {"installed", "migration.started", "migration.committed"},
			"US":     {"migration.committed"},
			"global": nil,
		}
		for realm, types := range want {
			evs := apps[realm].appEvents(t, clientKey, realm)
			if !slices.Equal(eventTypes(evs), types) {
				t.Fatalf("the %s app received %v, want %v", realm, eventTypes(evs), types)
			}
			for _, ev := range evs {
				if ev.ClientKey != clientKey || ev.Realm != realm {
					t.Fatalf("event at the %s app: %+v", realm, ev)
				}
				if strings.HasPrefix(ev.Type, "migration.") && (ev.From != "EU" || ev.To != "US" || ev.MigrationID != migrationID) {
					t.Fatalf("%s at the %s app: %+v, want from EU to US, migration %s", ev.Type, realm, ev, migrationID)
				}
			}
		}
	})

	// The app calls the product through realmhook; the product stub checks
	// realmhook's signature (the tenant's secret, iss the app key, qsh).
	t.Run("Egress", func(t *testing.T) {
		r := frontendCall(t, s, ten, "US", http.MethodGet, "/api/myself", nil, nil)
		mustStatus(t, r, http.StatusOK, "the app's product call through egress")
		var me struct {
			Realm  string
			Myself struct{ AccountID string }
		}
		if err := json.Unmarshal(r.Body, &me); err != nil || me.Realm != "US" || me.Myself.AccountID != "app:com.example.realmhook-node-app" {
			t.Fatalf("myself through egress: %s", r.Body)
		}

		myself := "http://" + egress + "/host/" + clientKey + "/rest/api/3/myself"
		now := time.Now()
		for _, c := range []struct {
			name string
			url  string
			sub  string
			iat  time.Time
			exp  time.Time
			want int
		}{
			{"Valid", myself, clientKey, now, now.Add(30 * time.Second), http.StatusOK},
			{"AnotherTenantsToken", myself, "someone-else", now, now.Add(30 * time.Second), http.StatusUnauthorized},
			{"Expired", myself, clientKey, now.Add(-2 * time.Minute), now.Add(-time.Minute), http.StatusUnauthorized},
			{"LivesTooLong", myself, clientKey, now, now.Add(5 * time.Minute), http.StatusUnauthorized},
			{"DotSegments", "http://" + egress + "/host/" + clientKey + "/../other/rest/api/3/myself", clientKey, now, now.Add(30 * time.Second), http.StatusBadRequest},
			{"EncodedDotSegments", "http://" + egress + "/host/" + clientKey + "/%2e%2e/other/rest/api/3/myself", clientKey, now, now.Add(30 * time.Second), http.StatusBadRequest},
			{"EncodedSlash", "http://" + egress + "/host/" + clientKey + "/..%2Fother/rest/api/3/myself", clientKey, now, now.Add(30 * time.Second), http.StatusBadRequest},
		} {
			t.Run(c.name, func(t *testing.T) {
				tok := mustEgressToken(t, jwt.MapClaims{"aud": "realmhook-egress", "sub": c.sub, "iat": c.iat.Unix(), "exp": c.exp.Unix()})
				r := do(t, http.MethodGet, c.url, http.Header{"Authorization": {"Bearer " + tok}}, nil)
				mustStatus(t, r, c.want, c.name)
				if c.want != http.StatusOK && r.JSON(t)["error"] == nil {
					t.Fatalf("refusal without an error code: %s", r.Body)
				}
			})
		}
	})
}

// mustHostTenant reads the tenant the host emulator installed, with its
// shared secret, from its state file.
func mustHostTenant(t testing.TB, state, clientKey string) tenant {
	t.Helper()
	h, err := hostsim.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	ht, ok := h.Tenant(clientKey)
	if !ok {
		t.Fatalf("the host emulator has no tenant %s", clientKey)
	}
	return tenant{ClientKey: ht.ClientKey, Secret: ht.SharedSecret}
}

// mustForeignIdentity is an identity token with every claim right but signed
// with another secret: what a client that guessed the format could send.
func mustForeignIdentity(t testing.TB, clientKey string) string {
	t.Helper()
	key, err := identitytoken.NewKey(strings.Repeat("k", 40))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := key.Mint(identitytoken.Identity{ClientKey: clientKey, Realm: "EU"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// mustEgressToken signs an egress token as the app does, with any claims.
func mustEgressToken(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(nodeAppIdentitySecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var productLine = regexp.MustCompile(`product stub at (http://\S+?);`)

// mustHostProduct runs `realmctl host product`, the product's REST API stub,
// as its own process on a free port; tenants installed afterwards have
// their site under it.
func mustHostProduct(t testing.TB, state string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "realmctl"), "host", "product", "--listen", "127.0.0.1:0", "--state", state)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	var u string
	waitFor(t, 15*time.Second, "realmctl host product to serve", func() bool {
		m := productLine.FindStringSubmatch(out.String())
		if m == nil {
			return false
		}
		u = m[1]
		return true
	})
	return u
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
