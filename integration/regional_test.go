package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/realmhook/realmhook/connectjwt"
	peerv1 "github.com/realmhook/realmhook/gen/realmhook/peer/v1"
	"github.com/realmhook/realmhook/gen/realmhook/peer/v1/peerv1connect"
	"github.com/realmhook/realmhook/integration/pgtest"
	"github.com/realmhook/realmhook/internalauth"
)

// regionalSecret is internal.secret of every test deployment.
const regionalSecret = "regional-integration-internal-secret"

// regionalRealms are the realms of a test deployment, each its own process.
var regionalRealms = []string{"global", "US", "EU"}

// deployment is the regional shape on one machine: one realmhook process per
// realm, each with its own PostgreSQL database, reaching the others over the
// internal API.
type deployment struct {
	procs    map[string]*server
	bases    map[string]string // realm → public base URL
	internal map[string]string // realm → internalUrl
	dbs      map[string]string // realm → database URL
	// via is the internalUrl the other processes are given for a realm.
	via map[string]string
	env map[string][]string
	ks  *keyServer
}

// mustDeploy starts a process per realm; extra is appended to each config.
func mustDeploy(t *testing.T, extra string) *deployment {
	t.Helper()
	return mustDeployWith(t, deployOptions{Extra: extra})
}

// deployOptions vary a deployment.
type deployOptions struct {
	Extra string
	// KeysURL is the signed-install key server (default: a test one).
	KeysURL string
	// Via, by realm, stands between the other processes and the realm's
	// internal API (a toxiproxy link): given its address, it returns the
	// URL they reach the realm at instead.
	Via map[string]func(internal string) string
	// Env, by realm, is added to that process's environment.
	Env map[string][]string
}

func mustDeployWith(t *testing.T, o deployOptions) *deployment {
	t.Helper()
	d := &deployment{procs: map[string]*server{}, bases: map[string]string{}, internal: map[string]string{}, dbs: map[string]string{}, via: map[string]string{}}
	if o.KeysURL != "" {
		d.ks = &keyServer{URL: o.KeysURL}
	} else {
		d.ks = mustKeyServer(t)
	}
	ports := map[string]int{}
	for _, r := range regionalRealms {
		ports[r] = freePort(t)
		d.bases[r] = fmt.Sprintf("http://127.0.0.1:%d", ports[r])
		d.internal[r] = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		d.dbs[r] = pgtest.NewDatabase(t)
		d.via[r] = d.internal[r]
		if via, ok := o.Via[r]; ok {
			d.via[r] = via(strings.TrimPrefix(d.internal[r], "http://"))
		}
	}
	d.env = o.Env
	for _, r := range regionalRealms {
		d.procs[r] = d.mustStart(t, r, d.dbs[r], ports[r], o.Extra)
	}
	return d
}

// config is the config file of a process serving realm on its database.
func (d *deployment) config(realm, database string, port int, internalListen, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:%d\ninstallKeys: {url: %q, timeout: 2s}\njwt: {leeway: 5s}\nlog: {level: debug}\n", port, d.ks.URL)
	fmt.Fprintf(&b, "serve: [%s]\ninternal:\n  listen: %s\n  secret: %q\n", realm, internalListen, regionalSecret)
	b.WriteString("realms:\n")
	for _, r := range regionalRealms {
		internalURL := d.via[r]
		if r == realm {
			internalURL = d.internal[r]
		}
		fmt.Fprintf(&b, "  %s:\n    baseUrl: %s\n    internalUrl: %s\n", r, d.bases[r], internalURL)
		if r == realm {
			fmt.Fprintf(&b, "    database: %q\n", database)
		}
	}
	fmt.Fprintf(&b, "secrets:\n  keys: [%q]\n", testSecretKey)
	b.WriteString(extra)
	return b.String()
}

// mustStart starts a process serving realm on database at port.
func (d *deployment) mustStart(t *testing.T, realm, database string, port int, extra string) *server {
	t.Helper()
	internalListen := strings.TrimPrefix(d.internal[realm], "http://")
	if port != mustPort(t, d.bases[realm]) {
		// Another replica of the realm: its own public and internal ports.
		internalListen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "realmhook.yaml")
	if err := os.WriteFile(cfgPath, []byte(d.config(realm, database, port, internalListen, extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	urls := map[string]string{}
	for r, u := range d.bases {
		urls[r] = u
	}
	urls[realm] = base
	s := &server{t: t, Base: base, Dir: dir, cfgPath: cfgPath, RealmURLs: urls, Env: d.env[realm]}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func mustPort(t *testing.T, base string) int {
	t.Helper()
	var port int
	if _, err := fmt.Sscanf(base, "http://127.0.0.1:%d", &port); err != nil {
		t.Fatal(err)
	}
	return port
}

// TestRegional_LocateAndForward: a tenant installed in EU, called at the
// other realms' processes: its API calls are told where it lives (421, the
// body a single process gives), its migration hooks are forwarded to EU and
// answered as EU answers them; an unknown tenant reads as it does anywhere;
// a realm whose process is down makes the lookup 503, never "unknown".
func TestRegional_LocateAndForward(t *testing.T) {
	d := mustDeploy(t, "")
	ten := newTenant(t)
	mustInstall(t, d.procs["EU"], d.ks, ten, "EU")
	const prop = "/api/v1/properties/color"
	mustStatus(t, call(t, d.procs["EU"], ten, "EU", http.MethodPut, prop, []byte(`"red"`)), http.StatusCreated, "write at EU")

	t.Run("InstallElsewhereRefused", func(t *testing.T) {
		r := signedInstall(t, d.procs["US"], d.ks, ten, "US", "installed")
		mustStatus(t, r, http.StatusConflict, "install at US of a tenant EU holds")
		if got := r.JSON(t)["pinnedRealm"]; got != "EU" {
			t.Fatalf("pinnedRealm = %v, want EU: %s", got, r.Body)
		}
	})

	t.Run("TenantCallMisdirected", func(t *testing.T) {
		for _, at := range []string{"US", "global"} {
			r := call(t, d.procs[at], ten, at, http.MethodGet, prop, nil)
			mustStatus(t, r, http.StatusMisdirectedRequest, "read at "+at)
			body := r.JSON(t)
			want := map[string]any{"error": "misdirected_request", "expectedRealm": "EU", "actualRealm": at, "correctBaseUrl": d.bases["EU"],
				"message": fmt.Sprintf("tenant %q is served by realm EU, not %s", ten.ClientKey, at)}
			if len(body) != len(want) {
				t.Fatalf("421 body %s, want exactly %v", r.Body, want)
			}
			for k, v := range want {
				if body[k] != v {
					t.Errorf("421 at %s: %s = %v, want %v", at, k, body[k], v)
				}
			}
		}
	})

	t.Run("MigrationHooksForwarded", func(t *testing.T) {
		// A migration to the realm the tenant lives in has nothing to copy,
		// so every hook's answer is EU's own, whoever it was sent to.
		m := newHostMigration(t, d.procs["US"], ten, "US", "EU", time.Hour)
		mustStatus(t, m.hook("schedule"), http.StatusOK, "schedule at US")
		m.s, m.realm = d.procs["global"], "global"
		mustStatus(t, m.hook("start"), http.StatusOK, "start at global")
		r := m.hook("status")
		mustStatus(t, r, http.StatusOK, "status at global")
		if got := r.JSON(t)["status"]; got != "ready-to-commit" {
			t.Fatalf("status = %v, want ready-to-commit: %s", got, r.Body)
		}
		m.s, m.realm = d.procs["EU"], "EU"
		if got := m.hook("status").JSON(t)["status"]; got != "ready-to-commit" {
			t.Fatalf("status at EU itself = %v", got)
		}
		m.s, m.realm = d.procs["US"], "US"
		r = m.hook("commit")
		mustStatus(t, r, http.StatusOK, "commit at US")
		if got := r.JSON(t)["status"]; got != "committed" {
			t.Fatalf("commit = %v: %s", got, r.Body)
		}
		mustStatus(t, call(t, d.procs["EU"], ten, "EU", http.MethodGet, prop, nil), http.StatusOK, "read at EU after the commit")
		// A hook EU refuses is refused as EU refuses it.
		m.id = "never-scheduled"
		r = m.hook("commit")
		mustStatus(t, r, http.StatusNotFound, "commit of an unknown migration at US")
		if got := r.JSON(t)["errorResponseCode"]; got != "E0001" {
			t.Fatalf("errorResponseCode = %v, want E0001: %s", got, r.Body)
		}
	})

	t.Run("UnknownTenant", func(t *testing.T) {
		stranger := newTenant(t)
		want := call(t, d.procs["EU"], stranger, "EU", http.MethodGet, prop, nil)
		mustStatus(t, want, http.StatusUnauthorized, "unknown tenant at EU")
		for _, at := range []string{"US", "global"} {
			r := call(t, d.procs[at], stranger, at, http.MethodGet, prop, nil)
			mustStatus(t, r, http.StatusUnauthorized, "unknown tenant at "+at)
			if string(r.Body) != string(want.Body) {
				t.Errorf("unknown tenant at %s: %s, want the body EU gives: %s", at, r.Body, want.Body)
			}
		}
		// A token of the tenant's iss signed with another secret verifies
		// nowhere: the same 401, though EU holds the tenant.
		forged := ten
		forged.Secret = stranger.Secret
		if r := call(t, d.procs["US"], forged, "US", http.MethodGet, prop, nil); r.Status != http.StatusUnauthorized || string(r.Body) != string(want.Body) {
			t.Errorf("forged token at US: %d %s, want 401 %s", r.Status, r.Body, want.Body)
		}
	})

	t.Run("RealmDown", func(t *testing.T) {
		d.procs["global"].stop()
		stranger := newTenant(t)
		r := call(t, d.procs["US"], stranger, "US", http.MethodGet, prop, nil)
		mustStatus(t, r, http.StatusServiceUnavailable, "unknown tenant at US while global is down")
		if got := r.JSON(t)["error"]; got != "unavailable" {
			t.Fatalf("error = %v, want unavailable: %s", got, r.Body)
		}
		// The realm that holds the tenant answered: that is enough.
		mustStatus(t, call(t, d.procs["US"], ten, "US", http.MethodGet, prop, nil), http.StatusMisdirectedRequest, "read at US while global is down")
		m := newHostMigration(t, d.procs["US"], stranger, "US", "EU", time.Hour)
		r = m.hook("schedule")
		mustStatus(t, r, http.StatusServiceUnavailable, "schedule for an unknown tenant while global is down")
		if _, ok := r.JSON(t)["errorResponseCode"]; ok {
			t.Fatalf("a 503 carries an errorResponseCode, so the host would not retry: %s", r.Body)
		}
		d.procs["global"].restart()
		mustStatus(t, call(t, d.procs["US"], stranger, "US", http.MethodGet, prop, nil), http.StatusUnauthorized, "unknown tenant at US once global is back")
	})
}

// TestRegional_InternalCallsAuthenticated: the internal API refuses a call
// without a token, with an expired one, with one signed with another secret
// and with one meant for another realm, all alike; it answers a good one.
func TestRegional_InternalCallsAuthenticated(t *testing.T) {
	d := mustDeploy(t, "")
	ten := newTenant(t)
	mustInstall(t, d.procs["EU"], d.ks, ten, "EU")
	locate := func(audience string, signer *internalauth.Signer) (*connect.Response[peerv1.LocateResponse], error) {
		var opts []connect.ClientOption
		if signer != nil {
			opts = append(opts, connect.WithInterceptors(signer.ClientInterceptor(audience)))
		}
		c := peerv1connect.NewLocateServiceClient(http.DefaultClient, d.internal["EU"], opts...)
		return c.Locate(context.Background(), connect.NewRequest(&peerv1.LocateRequest{ClientKey: ten.ClientKey}))
	}
	good := internalauth.Signer{Secret: []byte(regionalSecret), Issuer: "US"}
	resp, err := locate("EU", &good)
	if err != nil || !resp.Msg.GetHeld() {
		t.Fatalf("Locate with a good token = %v, %v; want held", resp, err)
	}
	refused := map[string]func() error{
		"NoToken": func() error { _, err := locate("EU", nil); return err },
		"Expired": func() error {
			old := good
			old.Now = func() time.Time { return time.Now().Add(-time.Hour) }
			_, err := locate("EU", &old)
			return err
		},
		"OtherSecret": func() error {
			other := good
			other.Secret = []byte("another-secret-of-enough-length")
			_, err := locate("EU", &other)
			return err
		},
		"MeantForUS": func() error { _, err := locate("US", &good); return err },
	}
	var msgs []string
	for name, try := range refused {
		err := try()
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("%s: %v, want unauthenticated", name, err)
			continue
		}
		msgs = append(msgs, connect.NewError(connect.CodeOf(err), err).Message())
	}
	for _, m := range msgs[1:] {
		if m != msgs[0] {
			t.Errorf("refusals differ: %q and %q", m, msgs[0])
		}
	}
}

// TestRegional_MaxConcurrentAcrossReplicas: two processes serving EU on one
// database, as replicas behind a load balancer, take schedules at once; the
// database's count keeps them to migration.maxConcurrent together.
func TestRegional_MaxConcurrentAcrossReplicas(t *testing.T) {
	const limit, tenants = 2, 6
	extra := fmt.Sprintf("migration:\n  maxConcurrent: %d\n", limit)
	d := mustDeploy(t, extra)
	second := d.mustStart(t, "EU", d.dbs["EU"], freePort(t), extra)
	replicas := []*server{d.procs["EU"], second}
	var tens []tenant
	for range tenants {
		ten := newTenant(t)
		mustInstall(t, d.procs["EU"], d.ks, ten, "EU")
		tens = append(tens, ten)
	}
	codes := make([]string, tenants)
	statuses := make([]int, tenants)
	var wg sync.WaitGroup
	for i, ten := range tens {
		wg.Go(func() {
			// A load balancer's choice: the request for EU's base URL
			// reaches one replica or the other.
			addr := strings.TrimPrefix(replicas[i%2].Base, "http://")
			client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}}}
			m := newHostMigration(t, d.procs["EU"], ten, "EU", "EU", time.Hour)
			url := d.bases["EU"] + "/dare-migration/schedule"
			tok, err := connectjwt.Signer{}.HS256([]byte(ten.Secret), ten.ClientKey, http.MethodPost, url, d.bases["EU"])
			if err != nil {
				t.Error(err)
				return
			}
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(m.body()))
			req.Header.Set("Authorization", "JWT "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			statuses[i] = resp.StatusCode
			codes[i], _ = body["errorResponseCode"].(string)
		})
	}
	wg.Wait()
	scheduled := 0
	for i := range tens {
		switch {
		case statuses[i] == http.StatusOK:
			scheduled++
		case codes[i] != "E0004":
			t.Errorf("schedule %d: status %d, errorResponseCode %q; want 200 or E0004", i, statuses[i], codes[i])
		}
	}
	if scheduled != limit {
		t.Fatalf("%d schedules landed on two replicas, want maxConcurrent = %d", scheduled, limit)
	}
}
