package integration

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	_ "github.com/Shopify/toxiproxy/v2/toxics" // registers latency, reset_peer, …
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/realmhook/realmhook/integration/suitereport"
	"github.com/realmhook/realmhook/migration"
)

// pgLink is a toxiproxy proxy, in this test process on loopback, between
// realmhook and one realm's PostgreSQL: stopping it is the database going
// away (connections cut, new ones refused), toxics slow or cut the link.
type pgLink struct {
	proxy *toxiproxy.Proxy
	// URL is the realm's database URL through the proxy.
	URL string
}

var toxiServer = sync.OnceValue(func() *toxiproxy.ApiServer {
	return toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
})

func mustPGLink(t testing.TB, name, database string) *pgLink {
	t.Helper()
	u, err := url.Parse(database)
	if err != nil {
		t.Fatal(err)
	}
	p := toxiproxy.NewProxy(toxiServer(), name, "127.0.0.1:0", u.Host)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	u.Host = p.Listen
	return &pgLink{proxy: p, URL: u.String()}
}

// down stops the database as realmhook sees it; up brings it back on the
// same address.
func (l *pgLink) down() { l.proxy.Stop() }
func (l *pgLink) up(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := l.proxy.Start()
		if err == nil || err == toxiproxy.ErrProxyAlreadyStarted {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bring link %s back: %v", l.proxy.Name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (l *pgLink) mustToxic(t testing.TB, json string) {
	t.Helper()
	if _, err := l.proxy.Toxics.AddToxicJson(strings.NewReader(json)); err != nil {
		t.Fatalf("toxic %s: %v", json, err)
	}
}

func (l *pgLink) clearToxics(t testing.TB) { l.proxy.Toxics.ResetToxics(t.Context()) }

// linkFault is one fault of the family: inject runs while a migration of
// the tenant runs (after the process paused at pause, if set).
type linkFault struct {
	name   string
	pause  string
	inject func(t *testing.T, links map[string]*pgLink)
}

var linkFaults = []linkFault{
	{name: "TargetStoppedMidCopy", pause: "copy-checkpoint:2=3s", inject: func(t *testing.T, links map[string]*pgLink) {
		links["US"].down()
		time.Sleep(4 * time.Second)
		links["US"].up(t)
	}},
	{name: "SourceStoppedMidVerify", pause: "verify-table:1=3s", inject: func(t *testing.T, links map[string]*pgLink) {
		links["EU"].down()
		time.Sleep(4 * time.Second)
		links["EU"].up(t)
	}},
	{name: "Latency", inject: func(t *testing.T, links map[string]*pgLink) {
		for _, l := range links {
			l.mustToxic(t, `{"name":"latency","type":"latency","stream":"downstream","toxicity":1,"attributes":{"latency":15,"jitter":10}}`)
		}
	}},
	// Paused inside a copy interval, the target's transaction open: the cut
	// takes it down mid-COPY.
	{name: "ConnectionsCut", pause: "copy-batch:2=1500ms", inject: func(t *testing.T, links map[string]*pgLink) {
		// Cut every connection on both sides, five times, 400ms apart.
		for range 5 {
			links["EU"].down()
			links["US"].down()
			time.Sleep(100 * time.Millisecond)
			links["EU"].up(t)
			links["US"].up(t)
			time.Sleep(400 * time.Millisecond)
		}
	}},
	{name: "ResetPeers", pause: "copy-checkpoint:1=1s", inject: func(t *testing.T, links map[string]*pgLink) {
		// Every new connection to the target is reset after 300ms for a
		// while: the pool keeps losing connections under the copy.
		links["US"].mustToxic(t, `{"name":"reset","type":"reset_peer","stream":"downstream","toxicity":0.5,"attributes":{"timeout":300}}`)
		time.Sleep(3 * time.Second)
		links["US"].clearToxics(t)
	}},
}

// TestFaults_LostDatabasesAndSlowLinks runs migrations while the target's
// database stops mid-copy, the source's stops mid-verify, and the links to
// PostgreSQL are slowed or cut (toxiproxy). Each ends finished with an exact
// copy, or failed with E9999 and a clean rollback: never ready-to-commit on
// a short copy.
func TestFaults_LostDatabasesAndSlowLinks(t *testing.T) {
	ks := mustKeyServer(t)
	dbs := mustRealmDBs(t, allPostgres)
	links := map[string]*pgLink{}
	proxied := map[string]string{}
	for realm, a := range dbs {
		links[realm] = mustPGLink(t, "pg-"+realm, a.database)
		proxied[realm] = links[realm].URL
	}
	s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: proxied, Extra: crashCopy})
	var counts crashCounts
	outcomes := map[string]string{}
	for _, f := range linkFaults {
		t.Run(f.name, func(t *testing.T) {
			outcome, lost, dupl := runLinkFault(t, s, ks, dbs, links, f)
			outcomes[f.name] = outcome
			counts.add(!t.Failed(), lost, dupl)
		})
	}
	t.Logf("outcomes: %v", outcomes)
	suitereport.Record(t, "faults", "lost databases and slow links: %d injected, %d survived, %d rows lost, %d duplicated",
		counts.injected, counts.survived, counts.lost, counts.dupl)
}

func runLinkFault(t *testing.T, s *server, ks *keyServer, dbs realmDBs, links map[string]*pgLink, f linkFault) (outcome string, lost, dupl int) {
	ten := newTenant(t)
	mustInstall(t, s, ks, ten, "EU")
	dbs["EU"].mustInsertNotes(t, ten.ClientKey, suiteRows(700))
	mustStatus(t, call(t, s, ten, "EU", http.MethodPut, "/api/v1/properties/k", []byte(`"v"`)), http.StatusCreated, "put")
	before := dbs["EU"].mustTenantRows(t, ten.ClientKey)
	if f.pause != "" {
		s.kill()
		s.Env = []string{migration.PauseEnv + "=" + f.pause}
		s.restart()
		defer func() {
			s.kill()
			s.Env = nil
			s.restart()
		}()
	}
	m := newHostMigration(t, s, ten, "EU", "US", time.Hour)
	outBefore := len(s.Output())
	m.mustHook("schedule")
	m.mustHook("start")
	if f.pause != "" {
		line := migration.PauseEnv + ": paused at " + strings.SplitN(strings.SplitN(f.pause, "=", 2)[0], ":", 2)[0]
		waitFor(t, 60*time.Second, "the pause at "+f.pause, func() bool { return strings.Contains(s.Output()[outBefore:], line) })
	}
	f.inject(t, links)

	var st map[string]any
	waitFor(t, 180*time.Second, "the migration to finish or fail", func() bool {
		r := m.hook("status")
		if r.Status != http.StatusOK {
			t.Fatalf("status answered %d during a fault: %s", r.Status, r.Body)
		}
		st = r.JSON(t)
		return st["stale"] != true && (st["status"] == "ready-to-commit" || st["status"] == "failed")
	})
	for _, l := range links {
		l.clearToxics(t)
	}
	switch st["status"] {
	case "ready-to-commit":
		got := dbs["US"].mustTenantRows(t, ten.ClientKey)
		if lost, dupl = before.diff(got); lost+dupl > 0 {
			t.Fatalf("ready-to-commit on a copy with %d rows lost, %d duplicated", lost, dupl)
		}
		waitFor(t, 60*time.Second, "commit", func() bool {
			r := m.hook("commit")
			return r.Status == http.StatusOK && r.JSON(t)["status"] == "committed"
		})
		mustStatus(t, call(t, s, ten, "US", http.MethodGet, "/api/v1/properties/k", nil), http.StatusOK, "read in the new realm")
		return "committed", lost, dupl
	default:
		if st["errorResponseCode"] != "E9999" {
			t.Fatalf("failed without E9999: %v", st)
		}
		waitFor(t, 60*time.Second, "rollback", func() bool {
			r := m.hook("rollback")
			return r.Status == http.StatusOK && r.JSON(t)["status"] == "rolled-back"
		})
		if left := dbs["US"].mustTenantRows(t, ten.ClientKey); len(left.rows) > 0 {
			t.Fatalf("rollback left %d rows in the target", len(left.rows))
		}
		lost, dupl = before.diff(dbs["EU"].mustTenantRows(t, ten.ClientKey))
		mustStatus(t, call(t, s, ten, "EU", http.MethodPut, "/api/v1/properties/k", []byte(`"after"`)), http.StatusOK, "write after rollback")
		return "failed E9999, rolled back", lost, dupl
	}
}
