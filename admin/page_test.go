package admin_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/admin"
	"github.com/realmhook/realmhook/integration/suitereport"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/realms"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/sqlite"
)

// pacedPeer lets a migration's writes (not a rehearsal's) into the target
// one interval at a time, when the test says so, so that the page can be
// seen following a copy as it moves.
type pacedPeer struct {
	migration.Peer
	step     chan struct{}
	open     chan struct{}
	openOnce sync.Once
}

// release lets every write through from now on.
func (p *pacedPeer) release() { p.openOnce.Do(func() { close(p.open) }) }

func (p *pacedPeer) CopyRows(ctx context.Context, clientKey, id string, t store.Table, cols []string, next func() ([]store.Row, error)) (int64, error) {
	if !strings.HasPrefix(id, "rehearsal-") {
		select {
		case <-p.step:
		case <-p.open:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return p.Peer.CopyRows(ctx, clientKey, id, t, cols, next)
}

// chromium finds the browser; CI installs Debian's chromium (.ci/run).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: the page's test needs a real browser (Debian: apt-get install chromium; .ci/run installs it)")
	return ""
}

// TestAdminPage drives /admin in headless Chromium: a wrong token shows an
// error and no data; signed in, it finds a tenant, follows a running
// migration's progress bar as the copy moves, and rehearses a move.
func TestAdminPage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	served := map[string]store.Store{}
	var list []*realms.Realm
	for _, key := range []string{"global", "EU", "US"} {
		st, err := sqlite.Open(ctx, filepath.Join(dir, key+".db"), sqlite.Options{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		served[key] = st
		base := "http://localhost:8080"
		if key != "global" {
			base += "/realms/" + strings.ToLower(key)
		}
		r, err := realms.NewRealm(key, base, st)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, r)
	}
	reg, err := realms.NewRegistry(list...)
	if err != nil {
		t.Fatal(err)
	}
	paced := &pacedPeer{step: make(chan struct{}), open: make(chan struct{})}
	peers := map[string]migration.Peer{}
	for k, st := range served {
		peers[k] = migration.LocalPeer(st)
	}
	paced.Peer, peers["US"] = peers["US"], paced
	migs := migration.New(migration.Config{Enabled: true, MaxConcurrent: 5, BatchRows: 5, CheckpointRows: 5},
		served, peers, migration.Options{Logger: quietLogger()})
	t.Cleanup(func() { paced.release(); migs.Close() })
	svc, err := admin.New(admin.Options{Realms: reg, Migrations: migs, Token: testToken, ProbeInterval: 50 * time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	go svc.Run(runCtx)
	t.Cleanup(stop)
	hs := httptest.NewServer(svc.Handler())
	t.Cleanup(hs.Close)

	now := time.Now().UTC()
	putTenant := func(realm, key string, props int) *realmhook.Tenant {
		tn := &realmhook.Tenant{ClientKey: key, SharedSecret: "s-" + key, BaseURL: "https://" + key + ".atlassian.net",
			State: realmhook.TenantActive, Enabled: true, InstalledAt: now, UpdatedAt: now}
		if err := served[realm].PutTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		for i := range props {
			if _, err := served[realm].PutProperty(ctx, key, fmt.Sprintf("p%03d", i), []byte(`{"v":1}`)); err != nil {
				t.Fatal(err)
			}
		}
		return tn
	}
	moving := putTenant("EU", "acme-moving", 30)
	putTenant("EU", "findme", 12)
	putTenant("US", "other", 2)

	shots := t.ArtifactDir()
	// Printed at the end of make test, which keeps the directory.
	suitereport.Record(t, "admin page", "6 screenshots in %s", shots)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 1400),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	bctx, cancelTimeout := context.WithTimeout(bctx, 2*time.Minute)
	defer cancelTimeout()

	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// eval polls a JavaScript expression until it returns want.
	waitJS := func(what, expr, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, err := chromedp.Run(bctx, chromedp.Evaluate[string](`String(`+expr+`)`))
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				shot("failed-" + strings.ReplaceAll(what, " ", "-"))
				t.Fatalf("%s: %s = %q, want %q", what, expr, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	t.Log("a wrong token: an error, no data")
	run("open the page", chromedp.Navigate(hs.URL+"/admin"), chromedp.WaitVisible(chromedp.ID("token")))
	run("sign in wrong", chromedp.SendKeys(chromedp.ID("token"), "not-the-admin-token"), chromedp.Click(chromedp.CSS("#signin-form button[type=submit]")))
	waitJS("the refusal", `!document.getElementById("signin-error").hidden && document.getElementById("signin-error").textContent.includes("refused")`, "true")
	waitJS("no data", `document.getElementById("app").hidden && document.querySelectorAll("#realms tbody tr").length === 0`, "true")
	shot("1-wrong-token")

	t.Log("signed in: the realms")
	run("sign in", chromedp.SetValue(chromedp.ID("token"), testToken), chromedp.Click(chromedp.CSS("#signin-form button[type=submit]")))
	waitJS("the realms", `document.querySelectorAll("#realms tbody tr").length`, "3")
	waitJS("EU's health", `[...document.querySelectorAll("#realms tbody tr")].some(r => r.textContent.startsWith("EU") && r.textContent.includes("healthy"))`, "true")
	waitJS("the tenants picture", `document.querySelectorAll("#tenants-chart svg rect").length > 0`, "true")
	shot("2-realms")

	t.Log("a running migration's progress bar moves")
	req := migration.Request{MigrationID: "m-page", Location: "US", StartTime: now, EndTime: now.Add(90 * time.Minute)}
	if _, err := migs.Schedule(ctx, "EU", moving, req); err != nil {
		t.Fatal(err)
	}
	if _, err := migs.Start(ctx, "EU", moving, req); err != nil {
		t.Fatal(err)
	}
	bar := `document.querySelector('article[data-migration="m-page"] progress')`
	waitJS("the bar at the start", bar+`?.value`, "0")
	waitJS("the bar's total", bar+`?.max`, "30")
	for _, want := range []string{"5", "10", "15"} {
		paced.step <- struct{}{}
		waitJS("the bar at "+want, bar+`?.value`, want)
	}
	waitJS("the rows over time", `document.querySelector('article[data-migration="m-page"] polyline').getAttribute("points").split(" ").length >= 3`, "true")
	shot("3-migration-running")
	paced.release()
	waitJS("the migration ready", `document.querySelector('article[data-migration="m-page"] h3')?.textContent.includes("ready-to-commit")`, "true")

	t.Log("find a tenant")
	run("search", chromedp.SendKeys(chromedp.ID("client-key"), "findme"), chromedp.Click(chromedp.CSS("#search-form button[type=submit]")))
	waitJS("the tenant", `[...document.querySelectorAll(".tenant-record")].map(r => r.textContent).join("|").startsWith("EUactive")`, "true")
	shot("4-tenant")

	t.Log("rehearse its move")
	run("rehearse", chromedp.SetValue(chromedp.ID("rehearse-to"), "US"), chromedp.Click(chromedp.CSS("#rehearse-form button[type=submit]")))
	waitJS("the rehearsal's result", `document.querySelector("#rehearsal [data-state]")?.dataset.state`, "passed")
	waitJS("it fits", `document.querySelector("#rehearsal [data-state]").textContent.includes("12 rows") && document.querySelector("#rehearsal [data-state]").textContent.includes("fits the 1.5-hour window")`, "true")
	shot("5-rehearsal")
	if _, err := served["US"].GetTenant(ctx, "findme"); realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
		t.Errorf("the target holds the rehearsed tenant: %v", err)
	}

	t.Log("a phone's width")
	run("narrow", chromedp.EmulateViewport(390, 844))
	shot("6-phone")
}
