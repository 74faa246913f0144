package integration

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"

	"github.com/realmhook/realmhook/migration"
)

// regionalRows is how many properties the copy tests give a tenant: enough
// for several checkpoints at the batch sizes below.
const regionalRows = 120

// regionalCopy makes copies take several intervals.
const regionalCopy = "migration:\n  batchRows: 10\n  checkpointRows: 20\n  leaseTTL: 2s\n"

// mustProps writes n properties of ten at realm through proc.
func mustProps(t *testing.T, proc *server, ten tenant, realm string, n int) {
	t.Helper()
	for i := range n {
		mustStatus(t, call(t, proc, ten, realm, http.MethodPut, fmt.Sprintf("/api/v1/properties/p%04d", i), []byte(fmt.Sprintf(`{"n":%d}`, i))), http.StatusCreated, "write")
	}
}

// mustAllProps fails unless realm serves every one of ten's n properties.
func mustAllProps(t *testing.T, proc *server, ten tenant, realm string, n int) {
	t.Helper()
	r := call(t, proc, ten, realm, http.MethodGet, fmt.Sprintf("/api/v1/properties?limit=%d", n+1), nil)
	mustStatus(t, r, http.StatusOK, "list at "+realm)
	items, _ := r.JSON(t)["properties"].([]any)
	if len(items) != n {
		t.Fatalf("%s serves %d properties of %s, want %d: %.300s", realm, len(items), ten.ClientKey, n, r.Body)
	}
}

// TestRegional_MigrationsThroughRealmctl: the host emulator moves a tenant
// from US's process to EU's and on to global's, each a full copy over the
// transfer API, with realmctl doing what the host does.
func TestRegional_MigrationsThroughRealmctl(t *testing.T) {
	state := filepath.Join(t.TempDir(), "host.json")
	d := mustDeployWith(t, deployOptions{KeysURL: mustHostKeys(t, state)})
	desc := d.bases["global"] + "/atlassian-connect.json"
	mustRealmctl(t, "host", "install", "--state", state, "--descriptor", desc, "--realm", "US", "--client-key", "demo")
	mustRealmctl(t, "host", "call", "--state", state, "--client-key", "demo", "PUT", "/api/v1/properties/greeting", `{"hello":"world"}`)
	for _, to := range []string{"EU", "global"} {
		out := mustRealmctl(t, "host", "migrate", "--state", state, "--client-key", "demo", "--to", to, "--poll", "100ms")
		if !strings.Contains(out, "ready-to-commit") || !strings.Contains(out, "commit") {
			t.Fatalf("migrate to %s:\n%s", to, out)
		}
		out = mustRealmctl(t, "host", "call", "--state", state, "--client-key", "demo", "GET", "/api/v1/properties/greeting")
		if !strings.Contains(out, `"hello":"world"`) || !strings.Contains(out, "X-Realm: "+to+"\n") {
			t.Fatalf("read after the migration to %s:\n%s", to, out)
		}
	}
	// US gave the tenant up: it answers 421 pointing at global.
	out, code := realmctl(t, "host", "call", "--state", state, "--client-key", "demo", "--realm", "US", "GET", "/api/v1/properties/greeting")
	if code != 1 || !strings.Contains(out, "421") {
		t.Fatalf("call at US after both migrations: exit %d\n%s", code, out)
	}
}

// TestRegional_TargetKilledMidCopy: EU's process is SIGKILLed while US's
// copies a tenant into it, and started again; the copy resumes from its
// checkpoint and the migration finishes with every row, once.
func TestRegional_TargetKilledMidCopy(t *testing.T) {
	d := mustDeployWith(t, deployOptions{Extra: regionalCopy,
		Env: map[string][]string{"US": {migration.PauseEnv + "=copy-checkpoint:2=2s"}}})
	ten := newTenant(t)
	mustInstall(t, d.procs["US"], d.ks, ten, "US")
	mustProps(t, d.procs["US"], ten, "US", regionalRows)
	m := newHostMigration(t, d.procs["US"], ten, "US", "EU", time.Hour)
	m.mustHook("schedule")
	m.mustHook("start")
	waitFor(t, 20*time.Second, "US to pause mid-copy", func() bool {
		return strings.Contains(d.procs["US"].Output(), migration.PauseEnv+": paused at copy-checkpoint")
	})
	d.procs["EU"].kill()
	// Longer than the pause: the source resumes and finds the target gone.
	waitFor(t, 20*time.Second, "US to meet the target gone", func() bool {
		return strings.Contains(d.procs["US"].Output(), "migration job interrupted")
	})
	d.procs["EU"].restart()
	m.waitStatus(60*time.Second, "ready-to-commit")
	m.mustHook("commit")
	mustAllProps(t, d.procs["EU"], ten, "EU", regionalRows)
}

// TestRegional_LinkCut: the link from US's process to EU's internal API is
// cut mid-copy (a toxiproxy proxy in this test): the copy retries with
// backoff and finishes once the link is back; cut for longer than the
// window, the migration fails with E9999 when the window ends.
func TestRegional_LinkCut(t *testing.T) {
	var proxy *toxiproxy.Proxy
	via := func(internal string) string {
		proxy = toxiproxy.NewProxy(toxiServer(), "eu-internal-"+t.Name(), "127.0.0.1:0", internal)
		if err := proxy.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(proxy.Stop)
		return "http://" + proxy.Listen
	}
	d := mustDeployWith(t, deployOptions{Extra: regionalCopy, Via: map[string]func(string) string{"EU": via},
		Env: map[string][]string{"US": {migration.PauseEnv + "=copy-checkpoint:2=2s"}}})
	link := &pgLink{proxy: proxy}

	t.Run("Restored", func(t *testing.T) {
		ten := newTenant(t)
		mustInstall(t, d.procs["US"], d.ks, ten, "US")
		mustProps(t, d.procs["US"], ten, "US", regionalRows)
		m := newHostMigration(t, d.procs["US"], ten, "US", "EU", time.Hour)
		m.mustHook("schedule")
		m.mustHook("start")
		waitFor(t, 20*time.Second, "US to pause mid-copy", func() bool {
			return strings.Contains(d.procs["US"].Output(), migration.PauseEnv+": paused at copy-checkpoint")
		})
		link.down()
		waitFor(t, 20*time.Second, "US to meet the link cut", func() bool {
			return strings.Contains(d.procs["US"].Output(), "migration job interrupted")
		})
		link.up(t)
		m.waitStatus(60*time.Second, "ready-to-commit")
		m.mustHook("commit")
		mustAllProps(t, d.procs["EU"], ten, "EU", regionalRows)
	})

	t.Run("WindowEnds", func(t *testing.T) {
		ten := newTenant(t)
		mustInstall(t, d.procs["US"], d.ks, ten, "US")
		mustProps(t, d.procs["US"], ten, "US", 5)
		m := newHostMigration(t, d.procs["US"], ten, "US", "EU", 6*time.Second)
		m.mustHook("schedule")
		link.down()
		defer link.up(t)
		m.mustHook("start")
		var last map[string]any
		waitFor(t, 30*time.Second, "the migration to fail at the window's end", func() bool {
			last = m.hook("status").JSON(t)
			return last["status"] == "failed"
		})
		if last["errorResponseCode"] != "E9999" {
			t.Fatalf("failed with %v, want E9999", last)
		}
	})
}
