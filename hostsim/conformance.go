package hostsim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/realmhook/realmhook"
)

// Defaults of ConformanceOptions' zero fields.
const (
	DefaultConcurrencyAttempts = 50
	DefaultStatusTimeout       = 2 * time.Minute
	DefaultConformancePoll     = 200 * time.Millisecond
)

// Names of the conformance checks, in the order they run.
const (
	CheckDescriptorFetch        = "descriptor/fetch"
	CheckRegionBaseURLs         = "descriptor/regionBaseUrls"
	CheckLifecycle              = "descriptor/lifecycle"
	CheckSignedInstallDeclared  = "descriptor/apiMigrations.signed-install"
	CheckInstallSigned          = "install/signed-accepted"
	CheckInstallForgedSignature = "install/forged-signature-refused"
	CheckInstallUnknownKid      = "install/unknown-kid-refused"
	CheckInstallWrongAudience   = "install/wrong-aud-refused"
	CheckEnabledDisabled        = "lifecycle/enabled-disabled"
	CheckBadQSH                 = "auth/bad-qsh-refused"
	CheckContextQSH             = "auth/context-qsh-refused-on-hooks"
	CheckStartWithoutSchedule   = "hook/start-without-schedule-E0001"
	CheckUnknownRealm           = "hook/unknown-realm-E0002"
	CheckSchedule               = "hook/schedule"
	CheckScheduleIdempotent     = "hook/schedule-repeat-idempotent"
	CheckStart                  = "hook/start"
	CheckStartIdempotent        = "hook/start-repeat-idempotent"
	CheckStatus                 = "hook/status-ready-to-commit"
	CheckCommit                 = "hook/commit"
	CheckCommitIdempotent       = "hook/commit-repeat-idempotent"
	CheckCommitMoves            = "migration/commit-moves-tenant"
	CheckRollback               = "hook/rollback"
	CheckRollbackIdempotent     = "hook/rollback-repeat-idempotent"
	CheckRollbackRestores       = "migration/rollback-restores-tenant"
	CheckConcurrentLimit        = "hook/concurrent-limit-E0004"
	CheckUninstall              = "lifecycle/uninstalled"
	// The gateway checks run only with ConformanceOptions.GatewayPath.
	CheckGatewaySigned   = "gateway/signed-page-load"
	CheckGatewayUnsigned = "gateway/unsigned-refused"
)

const (
	conformanceClientKeyPrefix   = "conformance-"
	conformanceWrongAudience     = "https://not-this-app.example.com"
	conformanceUnknownRealm      = "ZZ"
	conformanceUnknownKidPrefix  = "realmctl-unknown-"
	conformanceForgedKeyBits     = 2048
	conformanceBadQSHRequestPath = "/not-the-requested-path"
)

// ConformanceOptions says which app to check and how.
type ConformanceOptions struct {
	DescriptorURL string
	// Source is the realm throwaway tenants are installed in ("" means
	// global); Target the realm they migrate to ("" means the first
	// regionBaseUrls key that is not Source).
	Source, Target string
	// Probe reads and writes tenant data through the app's own API; nil
	// means the migration checks judge the hooks' answers only.
	Probe DataProbe
	// ConcurrencyAttempts caps the migrations scheduled while looking for
	// E0004; 0 means DefaultConcurrencyAttempts.
	ConcurrencyAttempts int
	// StatusTimeout bounds the wait for ready-to-commit; Poll is the status
	// poll interval. 0 means the defaults.
	StatusTimeout time.Duration
	Poll          time.Duration
	// ForgedKey signs the forged installs; nil generates one (which takes a
	// moment, so tests pass one in).
	ForgedKey *rsa.PrivateKey
	// GatewayPath is a module path (relative to a realm's base URL) that
	// the app behind realmhook's gateway serves, such as a page module's
	// url: a page load the host signs must reach it (2xx) and an unsigned
	// one must be refused (401 or 403). "" skips the gateway checks.
	GatewayPath string
}

// Check is the result of one conformance check.
type Check struct {
	Name     string
	Passed   bool
	Detail   string // why it passed or failed
	Duration time.Duration
}

// String is the report line: "PASS name — why".
func (c Check) String() string {
	verdict := "FAIL"
	if c.Passed {
		verdict = "PASS"
	}
	return verdict + " " + c.Name + " — " + c.Detail
}

// Report is the outcome of a conformance run.
type Report struct {
	DescriptorURL string
	Started       time.Time
	Duration      time.Duration
	Checks        []Check
}

// Failed returns the checks that failed.
func (r Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.Passed {
			out = append(out, c)
		}
	}
	return out
}

// OK reports whether every check passed.
func (r Report) OK() bool { return len(r.Checks) > 0 && len(r.Failed()) == 0 }

// Check returns the check named name.
func (r Report) Check(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// conformance is one run: a scratch host whose throwaway tenants never reach
// the caller's state file.
type conformance struct {
	h       *Host
	out     io.Writer
	opts    ConformanceOptions
	d       *Descriptor
	report  *Report
	source  string
	target  string
	tenants []string // to uninstall at the end
}

// Conformance installs throwaway tenants into the app at opts.DescriptorURL and
// checks that it speaks the host's protocol (docs/protocol.md), printing one line per
// check to Out. The app must trust the host's key server (KeysURL). The error is
// for a run that could not be done at all; failed checks are in the Report.
func (h *Host) Conformance(ctx context.Context, opts ConformanceOptions) (Report, error) {
	if opts.ConcurrencyAttempts <= 0 {
		opts.ConcurrencyAttempts = DefaultConcurrencyAttempts
	}
	if opts.StatusTimeout <= 0 {
		opts.StatusTimeout = DefaultStatusTimeout
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultConformancePoll
	}
	kp, err := h.Keys()
	if err != nil {
		return Report{}, err
	}
	keysURL := h.keysURL()
	if err := h.checkKeyServer(ctx, keysURL, kp); err != nil {
		return Report{}, err
	}
	if opts.ForgedKey == nil {
		if opts.ForgedKey, err = rsa.GenerateKey(rand.Reader, conformanceForgedKeyBits); err != nil {
			return Report{}, fmt.Errorf("generate forged key: %w", err)
		}
	}
	s := New()
	s.Client, s.Signer, s.Now, s.Sleep, s.Logger = h.Client, h.Signer, h.Now, h.Sleep, h.Logger
	s.RetryDelay, s.Retries, s.KeysURL, s.keys = h.RetryDelay, h.Retries, keysURL, &kp

	c := &conformance{h: s, out: h.out(), opts: opts, report: &Report{DescriptorURL: opts.DescriptorURL, Started: h.now()}}
	c.run(ctx)
	c.cleanup(ctx)
	// Set before the report is copied out: a deferred assignment would land
	// after the copy, and the JUnit suite would say it took no time.
	c.report.Duration = h.now().Sub(c.report.Started)
	return *c.report, ctx.Err()
}

// record runs one check; fn returns why it passed, or an error saying why not.
func (c *conformance) record(name string, fn func() (string, error)) bool {
	start := c.h.now()
	detail, err := fn()
	ch := Check{Name: name, Passed: err == nil, Detail: detail, Duration: c.h.now().Sub(start)}
	if err != nil {
		ch.Detail = err.Error()
	}
	c.report.Checks = append(c.report.Checks, ch)
	fmt.Fprintln(c.out, ch.String())
	return ch.Passed
}

// blocked fails checks that cannot run because one they need failed.
func (c *conformance) blocked(why string, names ...string) {
	for _, n := range names {
		c.record(n, func() (string, error) { return "", errors.New("not run: " + why) })
	}
}

func (c *conformance) run(ctx context.Context) {
	var err error
	if !c.record(CheckDescriptorFetch, func() (string, error) {
		c.d, err = c.h.Descriptor(ctx, c.opts.DescriptorURL)
		if err != nil {
			return "", err
		}
		return "fetched " + c.opts.DescriptorURL, nil
	}) {
		return
	}
	c.checkDescriptor()
	if ctx.Err() != nil {
		return
	}

	// Everything below needs a tenant the app accepted.
	var tenant Tenant
	if !c.record(CheckInstallSigned, func() (string, error) {
		tenant, err = c.install(ctx)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("RS256 installed accepted in realm %s", c.source), nil
	}) {
		c.blocked(CheckInstallSigned+" failed",
			CheckInstallForgedSignature, CheckInstallUnknownKid, CheckInstallWrongAudience, CheckEnabledDisabled,
			CheckBadQSH, CheckContextQSH, CheckStartWithoutSchedule, CheckUnknownRealm,
			CheckSchedule, CheckScheduleIdempotent, CheckStart, CheckStartIdempotent, CheckStatus,
			CheckCommit, CheckCommitIdempotent, CheckCommitMoves,
			CheckRollback, CheckRollbackIdempotent, CheckRollbackRestores, CheckConcurrentLimit, CheckUninstall)
		return
	}
	c.checkForgedInstalls(ctx)
	c.checkEnabledDisabled(ctx, tenant)
	c.checkAuth(ctx, tenant)
	c.checkGateway(ctx, tenant)

	m, err := c.h.migrationTarget(ctx, tenant)
	if err == nil && c.target == "" {
		err = realmhook.Errorf(realmhook.EINVALID, "no target realm: regionBaseUrls lists no realm other than %s", c.source)
	}
	if err != nil {
		c.blocked(err.Error(), CheckStartWithoutSchedule, CheckUnknownRealm,
			CheckSchedule, CheckScheduleIdempotent, CheckStart, CheckStartIdempotent, CheckStatus,
			CheckCommit, CheckCommitIdempotent, CheckCommitMoves,
			CheckRollback, CheckRollbackIdempotent, CheckRollbackRestores, CheckConcurrentLimit)
	} else {
		c.checkStartWithoutSchedule(ctx, m)
		c.checkUnknownRealm(ctx, m)
		c.checkCommitFlow(ctx)
		c.checkRollbackFlow(ctx)
		c.checkConcurrentLimit(ctx)
	}
	c.record(CheckUninstall, func() (string, error) {
		if err := c.h.Uninstall(ctx, tenant.ClientKey); err != nil {
			return "", err
		}
		return "RS256 uninstalled accepted", nil
	})
}

func (c *conformance) checkDescriptor() {
	d := c.d
	c.record(CheckRegionBaseURLs, func() (string, error) {
		if len(d.RegionBaseURLs) == 0 {
			return "", errors.New("regionBaseUrls is empty: the app can live in the Global realm only")
		}
		var bad []string
		for _, k := range d.Realms() {
			if !slices.Contains(KnownRealms, k) {
				bad = append(bad, fmt.Sprintf("key %q is not a realm (want one of %s)", k, strings.Join(KnownRealms, " ")))
			}
			if u, err := url.Parse(d.RegionBaseURLs[k]); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad = append(bad, fmt.Sprintf("%s: %q is not an absolute http(s) URL", k, d.RegionBaseURLs[k]))
			}
		}
		if len(bad) > 0 {
			return "", errors.New(strings.Join(bad, "; "))
		}
		return "realms " + strings.Join(d.Realms(), ", "), nil
	})
	c.record(CheckLifecycle, func() (string, error) {
		var missing []string
		for _, ev := range []string{EventInstalled, EventUninstalled, "dare-migration"} {
			if d.Lifecycle[ev] == "" {
				missing = append(missing, "lifecycle."+ev)
			}
		}
		if len(missing) > 0 {
			return "", fmt.Errorf("missing %s", strings.Join(missing, ", "))
		}
		return "installed, uninstalled and dare-migration (" + d.Lifecycle["dare-migration"] + ") declared", nil
	})
	c.record(CheckSignedInstallDeclared, func() (string, error) {
		if !d.APIMigrations["signed-install"] {
			return "", errors.New(`apiMigrations["signed-install"] is not true`)
		}
		return "signed install declared", nil
	})

	c.source = realmhook.GlobalRealm
	if c.opts.Source != "" {
		c.source = NormalizeRealm(c.opts.Source)
	}
	c.target = NormalizeRealm(c.opts.Target)
	if c.target == "" {
		for _, r := range d.Realms() {
			if r != c.source {
				c.target = r
				break
			}
		}
	}
}

// install installs a fresh throwaway tenant in the source realm.
func (c *conformance) install(ctx context.Context) (Tenant, error) {
	key, err := c.newClientKey()
	if err != nil {
		return Tenant{}, err
	}
	t, err := c.h.Install(ctx, InstallOptions{DescriptorURL: c.opts.DescriptorURL, Realm: c.source, ClientKey: key})
	if err != nil {
		return Tenant{}, err
	}
	c.tenants = append(c.tenants, t.ClientKey)
	return t, nil
}

func (c *conformance) newClientKey() (string, error) {
	b, err := randomBytes(6)
	if err != nil {
		return "", err
	}
	return conformanceClientKeyPrefix + hex.EncodeToString(b), nil
}

// checkForgedInstalls sends installs a careful app must refuse, each for a
// fresh tenant so that a refusal cannot be mistaken for a duplicate.
func (c *conformance) checkForgedInstalls(ctx context.Context) {
	kp := *c.h.keys
	unknownKid := conformanceUnknownKidPrefix + strings.TrimPrefix(kp.ID, "realmctl-")
	cases := []struct {
		name, what string
		token      func(t Tenant, base string) tokenFunc
	}{
		{CheckInstallForgedSignature, "signed by another key under the served kid " + kp.ID,
			func(t Tenant, base string) tokenFunc { return c.h.rs256(c.opts.ForgedKey, kp.ID, t.ClientKey, base) }},
		{CheckInstallUnknownKid, "signed under kid " + unknownKid + ", which the key server does not serve",
			func(t Tenant, base string) tokenFunc {
				return c.h.rs256(c.opts.ForgedKey, unknownKid, t.ClientKey, base)
			}},
		{CheckInstallWrongAudience, "aud " + conformanceWrongAudience,
			func(t Tenant, _ string) tokenFunc {
				return c.h.rs256(kp.Private, kp.ID, t.ClientKey, conformanceWrongAudience)
			}},
	}
	for _, tc := range cases {
		c.record(tc.name, func() (string, error) {
			key, err := c.newClientKey()
			if err != nil {
				return "", err
			}
			t, err := c.h.newInstall(InstallOptions{DescriptorURL: c.opts.DescriptorURL, Realm: c.source, ClientKey: key})
			if err != nil {
				return "", err
			}
			base, err := c.d.RealmBaseURL(c.source)
			if err != nil {
				return "", err
			}
			resp, err := c.h.lifecycle(ctx, c.d, t, EventInstalled, base, tc.token(t, base))
			if err != nil {
				return "", err
			}
			return refused(resp, "install "+tc.what, false)
		})
	}
}

// refused judges an answer to a request the app must refuse: a 4xx (401/403
// only when authOnly, so that "unknown migration" does not pass for "bad token").
func refused(resp *Response, what string, authOnly bool) (string, error) {
	switch {
	case resp.OK():
		return "", fmt.Errorf("%s was accepted: %s", what, resp.Summary())
	case authOnly && resp.StatusCode != 401 && resp.StatusCode != 403:
		return "", fmt.Errorf("%s answered %s, want 401 or 403", what, resp.Summary())
	case resp.StatusCode < 400 || resp.StatusCode >= 500:
		return "", fmt.Errorf("%s answered %s, want a 4xx refusal", what, resp.Summary())
	}
	return fmt.Sprintf("%s: refused with %d", what, resp.StatusCode), nil
}

func (c *conformance) checkEnabledDisabled(ctx context.Context, t Tenant) {
	c.record(CheckEnabledDisabled, func() (string, error) {
		if c.d.Lifecycle[EventEnabled] == "" && c.d.Lifecycle[EventDisabled] == "" {
			return "lifecycle.enabled and lifecycle.disabled not declared (optional)", nil
		}
		var done []string
		for _, ev := range []string{EventDisabled, EventEnabled} {
			if c.d.Lifecycle[ev] == "" {
				continue
			}
			if err := c.h.toggle(ctx, t.ClientKey, ev); err != nil {
				return "", err
			}
			done = append(done, ev)
		}
		return "HS256 " + strings.Join(done, " and ") + " accepted", nil
	})
}

// checkAuth sends tokens that are valid but not for the request made.
func (c *conformance) checkAuth(ctx context.Context, t Tenant) {
	m, err := c.h.migrationTarget(ctx, t)
	c.record(CheckBadQSH, func() (string, error) {
		if err != nil {
			return "", err
		}
		statusURL := m.url(HookStatus, "1")
		wrong := func(method, _, baseURL string) (string, error) {
			return jwtHeader(c.h.signer().HS256([]byte(t.SharedSecret), t.ClientKey, method, baseURL+conformanceBadQSHRequestPath, baseURL))
		}
		resp, err := c.h.send(ctx, "GET", statusURL, m.base, nil, wrong)
		if err != nil {
			return "", err
		}
		return refused(resp, "GET status with a qsh for "+conformanceBadQSHRequestPath, true)
	})
	c.record(CheckContextQSH, func() (string, error) {
		if err != nil {
			return "", err
		}
		ctxToken := func(string, string, string) (string, error) {
			return jwtHeader(c.h.signer().HS256Context([]byte(t.SharedSecret), t.ClientKey))
		}
		resp, err := c.h.send(ctx, "GET", m.url(HookStatus, "1"), m.base, nil, ctxToken)
		if err != nil {
			return "", err
		}
		d1, err := refused(resp, "GET status with a context-qsh token", true)
		if err != nil {
			return "", err
		}
		id, err := c.newMigrationID()
		if err != nil {
			return "", err
		}
		body := c.scheduleBody(id, c.target)
		resp, err = c.h.hook(ctx, m, HookSchedule, body, ctxToken)
		if err != nil {
			return "", err
		}
		if resp.OK() {
			// Undo what the app should not have accepted.
			_, _ = c.h.hook(ctx, m, HookRollback, &migrationBody{MigrationID: id}, nil)
		}
		d2, err := refused(resp, "POST schedule with a context-qsh token", true)
		if err != nil {
			return "", err
		}
		return d1 + "; " + d2, nil
	})
}

// checkGateway loads GatewayPath as the host would, signed and unsigned.
func (c *conformance) checkGateway(ctx context.Context, t Tenant) {
	if c.opts.GatewayPath == "" {
		return
	}
	c.record(CheckGatewaySigned, func() (string, error) {
		resp, err := c.callAs(t, c.source)(ctx, "GET", c.opts.GatewayPath, nil)
		if err != nil {
			return "", err
		}
		if !resp.OK() {
			return "", fmt.Errorf("signed GET %s answered %s, want 2xx from the app behind the gateway", c.opts.GatewayPath, resp.Summary())
		}
		return fmt.Sprintf("signed GET %s answered %d", c.opts.GatewayPath, resp.StatusCode), nil
	})
	c.record(CheckGatewayUnsigned, func() (string, error) {
		base, err := c.d.RealmBaseURL(c.source)
		if err != nil {
			return "", err
		}
		rawURL, err := joinURL(base, c.opts.GatewayPath)
		if err != nil {
			return "", err
		}
		resp, err := c.h.send(ctx, "GET", rawURL, base, nil, nil)
		if err != nil {
			return "", err
		}
		return refused(resp, "unsigned GET "+c.opts.GatewayPath, true)
	})
}

func (c *conformance) newMigrationID() (string, error) {
	b, err := randomBytes(4)
	if err != nil {
		return "", err
	}
	var n uint32
	for _, x := range b {
		n = n<<8 | uint32(x)
	}
	return fmt.Sprint(n), nil
}

func (c *conformance) scheduleBody(id, location string) *migrationBody {
	now := c.h.now()
	return &migrationBody{StartTime: isoTime(now), EndTime: isoTime(now.Add(DefaultWindow)), Location: location, MigrationID: id}
}

// wantCode judges an answer that must carry errorResponseCode code.
func wantCode(resp *Response, code, what string) (string, error) {
	if resp.OK() {
		return "", fmt.Errorf("%s answered %s, want non-2xx with errorResponseCode %s", what, resp.Summary(), code)
	}
	if got := resp.ErrorResponseCode(); got != code {
		return "", fmt.Errorf("%s answered %s, want errorResponseCode %s", what, resp.Summary(), code)
	}
	return fmt.Sprintf("%s answered %d %s", what, resp.StatusCode, code), nil
}

func (c *conformance) checkStartWithoutSchedule(ctx context.Context, m migrationTarget) {
	c.record(CheckStartWithoutSchedule, func() (string, error) {
		id, err := c.newMigrationID()
		if err != nil {
			return "", err
		}
		resp, err := c.h.hook(ctx, m, HookStart, c.scheduleBody(id, c.target), nil)
		if err != nil {
			return "", err
		}
		return wantCode(resp, realmhook.ResponseNotScheduled, "start of unscheduled migration "+id)
	})
}

// checkUnknownRealm schedules migrations to realms the app does not serve. The
// refusal may come from schedule, start or status (as failed): the protocol
// allows each.
func (c *conformance) checkUnknownRealm(ctx context.Context, m migrationTarget) {
	c.record(CheckUnknownRealm, func() (string, error) {
		locations := []string{conformanceUnknownRealm}
		for _, r := range KnownRealms {
			if _, listed := c.d.RegionBaseURLs[r]; !listed && r != c.source {
				locations = append(locations, r)
				break
			}
		}
		var details []string
		for _, loc := range locations {
			d, err := c.expectRefusedLocation(ctx, m, loc)
			if err != nil {
				return "", err
			}
			details = append(details, d)
		}
		return strings.Join(details, "; "), nil
	})
}

func (c *conformance) expectRefusedLocation(ctx context.Context, m migrationTarget, loc string) (string, error) {
	id, err := c.newMigrationID()
	if err != nil {
		return "", err
	}
	body := c.scheduleBody(id, loc)
	idOnly := &migrationBody{MigrationID: id}
	what := fmt.Sprintf("migration to %q", loc)
	for _, hook := range []string{HookSchedule, HookStart, HookStatus} {
		b := body
		if hook == HookStatus {
			b = idOnly
		}
		resp, err := c.h.hook(ctx, m, hook, b, nil)
		if err != nil {
			return "", err
		}
		if hook == HookStatus && resp.OK() && resp.Status() == StatusFailed {
			_, _ = c.h.hook(ctx, m, HookRollback, idOnly, nil)
			if resp.ErrorResponseCode() != realmhook.ResponseRealmNotSupported {
				return "", fmt.Errorf("%s: status failed with %s, want E0002", what, orDash(resp.ErrorResponseCode()))
			}
			return what + ": status failed with E0002", nil
		}
		if !resp.OK() {
			if hook != HookSchedule {
				_, _ = c.h.hook(ctx, m, HookRollback, idOnly, nil)
			}
			return wantCode(resp, realmhook.ResponseRealmNotSupported, what+": "+hook)
		}
	}
	_, _ = c.h.hook(ctx, m, HookRollback, idOnly, nil)
	return "", fmt.Errorf("%s was scheduled, started and not reported failed", what)
}

// flow is one migration of a fresh tenant, run hook by hook.
type flow struct {
	c      *conformance
	t      Tenant
	m      migrationTarget // hooks at the source realm
	id     string
	body   *migrationBody
	idOnly *migrationBody
}

func (c *conformance) startFlow(ctx context.Context, dependents []string) (*flow, bool) {
	var f *flow
	ok := c.record(CheckSchedule, func() (string, error) {
		t, err := c.install(ctx)
		if err != nil {
			return "", fmt.Errorf("install a tenant to migrate: %w", err)
		}
		if c.opts.Probe != nil {
			if err := c.opts.Probe.Put(ctx, c.callAs(t, c.source)); err != nil {
				return "", fmt.Errorf("data probe %s before the migration: %w", c.opts.Probe.Name(), err)
			}
		}
		m, err := c.h.migrationTarget(ctx, t)
		if err != nil {
			return "", err
		}
		id, err := c.newMigrationID()
		if err != nil {
			return "", err
		}
		f = &flow{c: c, t: t, m: m, id: id, body: c.scheduleBody(id, c.target), idOnly: &migrationBody{MigrationID: id}}
		return f.expect2xx(ctx, HookSchedule, f.body)
	})
	if !ok {
		c.blocked(CheckSchedule+" failed", dependents...)
		return nil, false
	}
	return f, true
}

func (f *flow) expect2xx(ctx context.Context, hook string, body *migrationBody) (string, error) {
	resp, err := f.c.h.hook(ctx, f.m, hook, body, nil)
	if err != nil {
		return "", err
	}
	if !resp.OK() {
		return "", fmt.Errorf("%s of migration %s answered %s", hook, f.id, resp.Summary())
	}
	return fmt.Sprintf("%s %s→%s answered %d", hook, f.c.source, f.c.target, resp.StatusCode), nil
}

// startAndWait runs start twice and polls status until ready-to-commit.
func (f *flow) startAndWait(ctx context.Context) bool {
	if !f.c.record(CheckStart, func() (string, error) { return f.expect2xx(ctx, HookStart, f.body) }) {
		f.c.blocked(CheckStart+" failed", CheckStartIdempotent, CheckStatus)
		return false
	}
	f.c.record(CheckStartIdempotent, func() (string, error) { return f.expect2xx(ctx, HookStart, f.body) })
	return f.c.record(CheckStatus, func() (string, error) { return f.waitReady(ctx) })
}

func (f *flow) waitReady(ctx context.Context) (string, error) {
	deadline := f.c.h.now().Add(f.c.opts.StatusTimeout)
	var seen []string
	for polls := 1; ; polls++ {
		resp, err := f.c.h.hook(ctx, f.m, HookStatus, f.idOnly, nil)
		if err != nil {
			return "", err
		}
		st := resp.Status()
		switch {
		case !resp.OK():
			return "", fmt.Errorf("status answered %s", resp.Summary())
		case st == "":
			return "", fmt.Errorf(`status answered %s: no "status" string`, resp.Summary())
		case st == StatusReadyToCommit:
			return fmt.Sprintf("ready-to-commit after %d polls (seen: %s)", polls, strings.Join(append(seen, st), " → ")), nil
		case st == StatusFailed:
			return "", fmt.Errorf("status answered failed %s: %s", orDash(resp.ErrorResponseCode()), resp.Summary())
		}
		if len(seen) == 0 || seen[len(seen)-1] != st {
			seen = append(seen, st)
		}
		if !f.c.h.now().Before(deadline) {
			return "", fmt.Errorf("not ready-to-commit after %s (last status %q)", f.c.opts.StatusTimeout, st)
		}
		if err := f.c.h.sleep(ctx, f.c.opts.Poll); err != nil {
			return "", err
		}
	}
}

func (c *conformance) checkCommitFlow(ctx context.Context) {
	after := []string{CheckScheduleIdempotent, CheckStart, CheckStartIdempotent, CheckStatus, CheckCommit, CheckCommitIdempotent, CheckCommitMoves}
	f, ok := c.startFlow(ctx, after)
	if !ok {
		return
	}
	c.record(CheckScheduleIdempotent, func() (string, error) { return f.expect2xx(ctx, HookSchedule, f.body) })
	if !f.startAndWait(ctx) {
		c.blocked("the migration did not become ready to commit", CheckCommit, CheckCommitIdempotent, CheckCommitMoves)
		_, _ = c.h.hook(ctx, f.m, HookRollback, f.idOnly, nil)
		return
	}
	if !c.record(CheckCommit, func() (string, error) { return f.expect2xx(ctx, HookCommit, f.idOnly) }) {
		c.blocked(CheckCommit+" failed", CheckCommitIdempotent, CheckCommitMoves)
		return
	}
	// A host whose commit answer was lost sends it again to the same URL.
	c.record(CheckCommitIdempotent, func() (string, error) { return f.expect2xx(ctx, HookCommit, f.idOnly) })
	c.record(CheckCommitMoves, func() (string, error) {
		moved := f.t
		moved.Realm = c.target
		if err := c.h.putTenant(moved); err != nil {
			return "", err
		}
		mt, err := c.h.migrationTarget(ctx, moved)
		if err != nil {
			return "", err
		}
		resp, err := c.h.hook(ctx, mt, HookStatus, f.idOnly, nil)
		if err != nil {
			return "", err
		}
		if !resp.OK() || resp.Status() == StatusFailed || resp.Status() == "rolled-back" {
			return "", fmt.Errorf("status in %s after commit answered %s", c.target, resp.Summary())
		}
		detail := fmt.Sprintf("status in %s after commit: %d %s", c.target, resp.StatusCode, orDash(resp.Status()))
		if c.opts.Probe == nil {
			return detail + " (no data probe: hook answers only)", nil
		}
		if err := c.opts.Probe.Check(ctx, c.callAs(moved, c.target)); err != nil {
			return "", fmt.Errorf("data probe %s in target %s: %w", c.opts.Probe.Name(), c.target, err)
		}
		if err := c.opts.Probe.Check(ctx, c.callAs(moved, c.source)); err == nil {
			return "", fmt.Errorf("data probe %s: the source realm %s still serves the tenant's data after commit", c.opts.Probe.Name(), c.source)
		}
		return detail + fmt.Sprintf("; probe %s: data served in %s, not in %s", c.opts.Probe.Name(), c.target, c.source), nil
	})
}

func (c *conformance) checkRollbackFlow(ctx context.Context) {
	// The rollback flow reuses the schedule/start/status checks' names; a
	// second verdict on them would be noise, so they are recorded once by the
	// commit flow and here only fail the rollback checks.
	after := []string{CheckRollback, CheckRollbackIdempotent, CheckRollbackRestores}
	f, err := c.quietFlow(ctx)
	if err != nil {
		c.blocked("migration to roll back: "+err.Error(), after...)
		return
	}
	if !c.record(CheckRollback, func() (string, error) { return f.expect2xx(ctx, HookRollback, f.idOnly) }) {
		c.blocked(CheckRollback+" failed", CheckRollbackIdempotent, CheckRollbackRestores)
		return
	}
	c.record(CheckRollbackIdempotent, func() (string, error) { return f.expect2xx(ctx, HookRollback, f.idOnly) })
	c.record(CheckRollbackRestores, func() (string, error) {
		resp, err := c.h.hook(ctx, f.m, HookStatus, f.idOnly, nil)
		if err != nil {
			return "", err
		}
		if !resp.OK() || resp.Status() == "committed" {
			return "", fmt.Errorf("status in %s after rollback answered %s", c.source, resp.Summary())
		}
		detail := fmt.Sprintf("status in %s after rollback: %d %s", c.source, resp.StatusCode, orDash(resp.Status()))
		if c.opts.Probe == nil {
			return detail + " (no data probe: hook answers only)", nil
		}
		if err := c.opts.Probe.Check(ctx, c.callAs(f.t, c.source)); err != nil {
			return "", fmt.Errorf("data probe %s in source %s after rollback: %w", c.opts.Probe.Name(), c.source, err)
		}
		return detail + fmt.Sprintf("; probe %s: data still served in %s", c.opts.Probe.Name(), c.source), nil
	})
}

// quietFlow takes a fresh tenant's migration to ready-to-commit without
// recording checks.
func (c *conformance) quietFlow(ctx context.Context) (*flow, error) {
	t, err := c.install(ctx)
	if err != nil {
		return nil, err
	}
	if c.opts.Probe != nil {
		if err := c.opts.Probe.Put(ctx, c.callAs(t, c.source)); err != nil {
			return nil, fmt.Errorf("data probe %s: %w", c.opts.Probe.Name(), err)
		}
	}
	m, err := c.h.migrationTarget(ctx, t)
	if err != nil {
		return nil, err
	}
	id, err := c.newMigrationID()
	if err != nil {
		return nil, err
	}
	f := &flow{c: c, t: t, m: m, id: id, body: c.scheduleBody(id, c.target), idOnly: &migrationBody{MigrationID: id}}
	for _, hook := range []string{HookSchedule, HookStart} {
		if _, err := f.expect2xx(ctx, hook, f.body); err != nil {
			return nil, err
		}
	}
	if _, err := f.waitReady(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// checkConcurrentLimit schedules and starts migrations of fresh tenants until
// the app answers E0004, then rolls them all back.
func (c *conformance) checkConcurrentLimit(ctx context.Context) {
	var started []*flow
	defer func() {
		for _, f := range started {
			_, _ = c.h.hook(ctx, f.m, HookRollback, f.idOnly, nil)
		}
	}()
	c.record(CheckConcurrentLimit, func() (string, error) {
		for i := 1; i <= c.opts.ConcurrencyAttempts; i++ {
			t, err := c.install(ctx)
			if err != nil {
				return "", fmt.Errorf("install tenant #%d: %w", i, err)
			}
			m, err := c.h.migrationTarget(ctx, t)
			if err != nil {
				return "", err
			}
			id, err := c.newMigrationID()
			if err != nil {
				return "", err
			}
			f := &flow{c: c, t: t, m: m, id: id, body: c.scheduleBody(id, c.target), idOnly: &migrationBody{MigrationID: id}}
			for _, hook := range []string{HookSchedule, HookStart, HookStatus} {
				b := f.body
				if hook == HookStatus {
					b = f.idOnly
				}
				resp, err := c.h.hook(ctx, m, hook, b, nil)
				if err != nil {
					return "", err
				}
				if resp.ErrorResponseCode() == realmhook.ResponseTooManyConcurrent {
					return fmt.Sprintf("E0004 from %s of concurrent migration #%d", hook, i), nil
				}
				if !resp.OK() {
					return "", fmt.Errorf("%s of concurrent migration #%d answered %s, want 2xx or E0004", hook, i, resp.Summary())
				}
				if hook == HookSchedule {
					started = append(started, f)
				}
			}
		}
		return "", fmt.Errorf("E0004 not reached after %d concurrent migrations", c.opts.ConcurrencyAttempts)
	})
}

// callAs signs calls as t to realm.
func (c *conformance) callAs(t Tenant, realm string) CallFunc {
	return func(ctx context.Context, method, path string, body []byte) (*Response, error) {
		base, err := c.h.realmBase(ctx, t, realm)
		if err != nil {
			return nil, err
		}
		rawURL, err := joinURL(base, path)
		if err != nil {
			return nil, err
		}
		return c.h.send(ctx, method, rawURL, base, body, c.h.asTenant(t))
	}
}

// cleanup uninstalls the throwaway tenants; failures are logged, not checks.
func (c *conformance) cleanup(ctx context.Context) {
	for _, key := range c.tenants {
		t, ok := c.h.Tenant(key)
		if !ok || !t.Installed {
			continue
		}
		if err := c.h.Uninstall(context.WithoutCancel(ctx), key); err != nil {
			c.h.logger().Warn("conformance cleanup: uninstall", "clientKey", key, "err", err)
		}
	}
}
