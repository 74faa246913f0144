package hostsim

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/realmhook/realmhook"
)

// Defaults of MigrateOptions' zero fields.
const (
	DefaultWindow = 2 * time.Hour
	DefaultPoll   = 2 * time.Second
)

// Migration hooks, appended to the descriptor's lifecycle.dare-migration prefix.
const (
	HookSchedule = "schedule"
	HookStart    = "start"
	HookStatus   = "status"
	HookCommit   = "commit"
	HookRollback = "rollback"
)

// Statuses of the status hook the host acts on.
const (
	StatusReadyToCommit = "ready-to-commit"
	StatusFailed        = "failed"
)

// Errors Migrate wraps when a migration did not end as asked.
var (
	ErrNotCommitted  = errors.New("migration did not commit")
	ErrNotRolledBack = errors.New("migration did not roll back")
)

// MigrateOptions says which tenant to move where, and how the host behaves.
type MigrateOptions struct {
	ClientKey string
	To        string        // target realm key, e.g. "US"
	Window    time.Duration // endTime - startTime; 0 means DefaultWindow
	Poll      time.Duration // status poll interval; 0 means DefaultPoll
	// Rollback sends /rollback instead of /commit once the app is ready.
	Rollback bool
	// CancelAfter, if not 0, cancels (rolls back) a migration not ready to
	// commit that long after /start, like a host whose admin cancels it.
	CancelAfter time.Duration
	MigrationID string // "" makes a random numeric id
	// Twice sends every hook a second time once it was answered, as a host
	// may; both answers must be 2xx.
	Twice bool
}

// Outcome is how a migration ended.
type Outcome string

// Outcomes of Migrate.
const (
	OutcomeCommitted  Outcome = "committed"
	OutcomeRolledBack Outcome = "rolled-back"
	// OutcomeFailed: neither committed nor rolled back (a hook refused).
	OutcomeFailed Outcome = "failed"
)

// MigrateResult tells how a migration went.
type MigrateResult struct {
	MigrationID string
	ClientKey   string
	From, To    string
	Outcome     Outcome
	// Reason says why it ended so, for people.
	Reason string
	// LastStatus and ErrorResponseCode are from the last status answer.
	LastStatus        string
	ErrorResponseCode string
	// Calls are every hook answer, in order.
	Calls []*Response
}

// migrationBody is the JSON body of the migration hooks.
type migrationBody struct {
	StartTime   string `json:"startTime,omitempty"`
	EndTime     string `json:"endTime,omitempty"`
	Location    string `json:"location,omitempty"`
	MigrationID string `json:"migrationId"`
}

// isoTime is the host's ISO-8601 form, with milliseconds, in UTC.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// migrationTarget is where a tenant's migration hooks go.
type migrationTarget struct {
	tenant Tenant
	base   string // the tenant's current realm base URL
	prefix string // lifecycle.dare-migration
}

func (h *Host) migrationTarget(ctx context.Context, t Tenant) (migrationTarget, error) {
	if t.Forge != nil {
		base, err := t.Forge.base(t.Realm)
		if err != nil {
			return migrationTarget{}, err
		}
		return migrationTarget{tenant: t, base: base, prefix: strings.TrimRight(t.Forge.MigrationPath, "/")}, nil
	}
	d, err := h.Descriptor(ctx, t.DescriptorURL)
	if err != nil {
		return migrationTarget{}, err
	}
	prefix, err := d.lifecyclePath("dare-migration")
	if err != nil {
		return migrationTarget{}, err
	}
	base, err := d.RealmBaseURL(t.Realm)
	if err != nil {
		return migrationTarget{}, err
	}
	return migrationTarget{tenant: t, base: base, prefix: strings.TrimRight(prefix, "/")}, nil
}

func (m migrationTarget) url(hook, migrationID string) string {
	u := m.base + m.prefix + "/" + hook
	if hook == HookStatus {
		u += "?migrationId=" + url.QueryEscape(migrationID)
	}
	return u
}

// hook calls one migration hook with the host's retry rule, signed by token
// (the tenant's HS256 token when nil).
func (h *Host) hook(ctx context.Context, m migrationTarget, hook string, body *migrationBody, token tokenFunc) (*Response, error) {
	if token == nil {
		token = h.asTenant(m.tenant)
	}
	method := "POST"
	var b []byte
	if hook == HookStatus {
		method = "GET"
	} else {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encode %s body: %w", hook, err)
		}
	}
	return h.sendRetried(ctx, method, m.url(hook, body.MigrationID), m.base, b, token)
}

// Migrate plays the host's data residency migration for one tenant: schedule,
// start, poll status until ready-to-commit, failed or the window's end, then
// commit (or roll back), telling each step on Out. On commit the tenant's realm
// becomes the target. The error wraps ErrNotCommitted (or ErrNotRolledBack when
// a rollback was asked for) if the migration did not end that way.
func (h *Host) Migrate(ctx context.Context, opts MigrateOptions) (MigrateResult, error) {
	r, err := h.newMigrationRun(ctx, opts)
	if err != nil {
		return MigrateResult{}, err
	}
	r.tell.begin(r)
	return r.drive(ctx)
}

// migrationRun is one migration the host drives. The driving (which hook
// when, what an answer means) is in its methods; what a person reads about it
// is in tell, so the one can change without the other.
type migrationRun struct {
	h      *Host
	m      migrationTarget
	opts   MigrateOptions // Window and Poll set
	to     string
	body   *migrationBody // schedule and start
	idOnly *migrationBody // status, commit and rollback
	start  time.Time
	end    time.Time
	res    MigrateResult
	tell   narration
}

// newMigrationRun checks opts and fixes what the run needs: the target
// realm, the window, the migration id and where the hooks go.
func (h *Host) newMigrationRun(ctx context.Context, opts MigrateOptions) (*migrationRun, error) {
	t, err := h.mustTenant(opts.ClientKey)
	if err != nil {
		return nil, err
	}
	to := NormalizeRealm(opts.To)
	if to == "" {
		return nil, realmhook.Errorf(realmhook.EINVALID, "migrate: target realm is empty")
	}
	if to == t.Realm {
		return nil, realmhook.Errorf(realmhook.EINVALID, "migrate: tenant %s already lives in realm %s", t.ClientKey, to)
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	id := opts.MigrationID
	if id == "" {
		if id, err = newMigrationID(); err != nil {
			return nil, err
		}
	}
	m, err := h.migrationTarget(ctx, t)
	if err != nil {
		return nil, err
	}
	start := h.now()
	end := start.Add(opts.Window)
	return &migrationRun{
		h: h, m: m, opts: opts, to: to,
		body:   &migrationBody{StartTime: isoTime(start), EndTime: isoTime(end), Location: to, MigrationID: id},
		idOnly: &migrationBody{MigrationID: id},
		start:  start,
		end:    end,
		res:    MigrateResult{MigrationID: id, ClientKey: t.ClientKey, From: t.Realm, To: to},
		tell:   narration{w: h.out()},
	}, nil
}

// newMigrationID is a random numeric id, as in the host's published examples.
func newMigrationID() (string, error) {
	b, err := randomBytes(4)
	if err != nil {
		return "", err
	}
	return strconv.FormatUint(uint64(binary.BigEndian.Uint32(b)), 10), nil
}

// drive runs the hooks in the host's order and ends the migration: a refused
// schedule ends it with nothing to undo; any later refusal rolls it back.
func (r *migrationRun) drive(ctx context.Context) (MigrateResult, error) {
	wantRollback := r.opts.Rollback
	if _, ok := r.call(ctx, HookSchedule, r.body); !ok {
		r.res.Outcome = OutcomeFailed
		return r.finish(wantRollback)
	}
	if _, ok := r.call(ctx, HookStart, r.body); !ok {
		r.rollback(ctx, r.res.Reason)
		return r.finish(wantRollback)
	}
	ready, cancelled := r.pollUntilReady(ctx)
	if cancelled {
		wantRollback = true
	}
	switch {
	case !ready:
		// pollUntilReady rolled it back.
	case r.opts.Rollback:
		r.rollback(ctx, "rollback asked for")
	default:
		if _, ok := r.call(ctx, HookCommit, r.idOnly); !ok {
			r.rollback(ctx, r.res.Reason)
			break
		}
		return r.committed()
	}
	return r.finish(wantRollback)
}

// pollUntilReady polls status until the app is ready to commit. Otherwise
// (a failed status, failed reported, the window's end, a cancel, an
// interruption) it rolls back and says whether that was a cancel.
func (r *migrationRun) pollUntilReady(ctx context.Context) (ready, cancelled bool) {
	started := r.h.now()
	for {
		resp, ok := r.call(ctx, HookStatus, r.idOnly)
		if resp != nil {
			r.res.LastStatus, r.res.ErrorResponseCode = resp.Status(), resp.ErrorResponseCode()
			r.tell.status(resp, r.res)
		}
		now := r.h.now()
		cancelAt := started.Add(r.opts.CancelAfter)
		switch {
		case !ok:
			r.rollback(ctx, r.res.Reason)
		case r.res.LastStatus == StatusReadyToCommit:
			return true, false
		case r.res.LastStatus == StatusFailed:
			r.rollback(ctx, "app reported failed "+orDash(r.res.ErrorResponseCode))
		case !now.Before(r.end):
			r.rollback(ctx, "window ended before the app was ready to commit")
		case r.opts.CancelAfter > 0 && !now.Before(cancelAt):
			r.rollback(ctx, fmt.Sprintf("cancelled after %s", r.opts.CancelAfter))
			return false, true
		default:
			wait := min(r.opts.Poll, r.end.Sub(now))
			if r.opts.CancelAfter > 0 {
				wait = min(wait, cancelAt.Sub(now))
			}
			if err := r.h.sleep(ctx, wait); err != nil {
				r.res.Reason = "interrupted: " + err.Error()
				r.rollback(ctx, r.res.Reason)
				return false, false
			}
			continue
		}
		return false, false
	}
}

// call sends one hook and records its answer; ok is false (and res.Reason
// says why) unless the app answered 2xx.
func (r *migrationRun) call(ctx context.Context, hook string, b *migrationBody) (*Response, bool) {
	r.tell.request(hook, r.m.url(hook, r.res.MigrationID))
	resp, err := r.h.hook(ctx, r.m, hook, b, nil)
	if err != nil {
		r.tell.transportError(err)
		r.res.Reason = fmt.Sprintf("%s: %v", hook, err)
		return nil, false
	}
	r.res.Calls = append(r.res.Calls, resp)
	r.tell.answer(hook, resp)
	if !resp.OK() {
		r.res.Reason = fmt.Sprintf("%s answered %s", hook, resp.Summary())
		return resp, false
	}
	if r.opts.Twice {
		again, err := r.h.hook(ctx, r.m, hook, b, nil)
		if err != nil {
			r.tell.transportError(err)
			r.res.Reason = fmt.Sprintf("%s sent again: %v", hook, err)
			return nil, false
		}
		r.res.Calls = append(r.res.Calls, again)
		r.tell.answer(hook+" (again)", again)
		if !again.OK() {
			r.res.Reason = fmt.Sprintf("%s sent again answered %s", hook, again.Summary())
			return again, false
		}
		return again, true
	}
	return resp, true
}

// rollback sends /rollback; the outcome is rolled-back only if the app took it.
func (r *migrationRun) rollback(ctx context.Context, why string) {
	r.tell.rollingBack(why)
	if _, ok := r.call(ctx, HookRollback, r.idOnly); ok {
		r.res.Outcome, r.res.Reason = OutcomeRolledBack, why
	} else {
		r.res.Outcome = OutcomeFailed
	}
}

// committed records the tenant's new realm, as the host routes it there now.
func (r *migrationRun) committed() (MigrateResult, error) {
	r.res.Outcome, r.res.Reason = OutcomeCommitted, "app committed"
	t, err := r.h.mustTenant(r.res.ClientKey)
	if err == nil {
		t.Realm = r.to
		err = r.h.putTenant(t)
	}
	if err != nil {
		return r.res, fmt.Errorf("migration committed, but saving the tenant's new realm failed: %w", err)
	}
	r.tell.committed(r.res)
	return r.res, nil
}

// finish says whether the migration ended as asked.
func (r *migrationRun) finish(wantRollback bool) (MigrateResult, error) {
	res := r.res
	switch {
	case wantRollback && res.Outcome == OutcomeRolledBack:
		r.tell.rolledBack(res)
		return res, nil
	case wantRollback:
		return res, fmt.Errorf("migration %s of %s: %w: %s", res.MigrationID, res.ClientKey, ErrNotRolledBack, res.Reason)
	case res.Outcome == OutcomeCommitted:
		return res, nil
	default:
		return res, fmt.Errorf("migration %s of %s (%s): %w: %s", res.MigrationID, res.ClientKey, res.Outcome, ErrNotCommitted, res.Reason)
	}
}

// narration is what `realmctl host migrate` prints about a migration: one
// line per hook sent and per answer, one per status poll.
type narration struct{ w io.Writer }

func (n narration) begin(r *migrationRun) {
	fmt.Fprintf(n.w, "migration %s: tenant %s from %s to %s, window %s → %s, hooks at %s%s\n",
		r.res.MigrationID, r.res.ClientKey, r.res.From, r.to, r.body.StartTime, r.body.EndTime, r.m.base, r.m.prefix)
}

// request tells of a hook being sent; status polls are told by their answer.
func (n narration) request(hook, url string) {
	if hook != HookStatus {
		fmt.Fprintf(n.w, "%-9s POST %s\n", hook, url)
	}
}

func (n narration) transportError(err error) { fmt.Fprintf(n.w, "  ✗ %v\n", err) }

func (n narration) answer(hook string, resp *Response) {
	if hook != HookStatus {
		fmt.Fprintf(n.w, "  ← %s\n", resp.Summary())
	}
}

func (n narration) status(resp *Response, res MigrateResult) {
	fmt.Fprintf(n.w, "%-9s %d %s%s\n", HookStatus, resp.StatusCode, orDash(res.LastStatus), progressText(resp.Body, res.ErrorResponseCode))
}

func (n narration) rollingBack(why string) { fmt.Fprintf(n.w, "rolling back: %s\n", why) }

func (n narration) committed(res MigrateResult) {
	fmt.Fprintf(n.w, "migration %s committed: tenant %s now lives in %s\n", res.MigrationID, res.ClientKey, res.To)
}

func (n narration) rolledBack(res MigrateResult) {
	fmt.Fprintf(n.w, "migration %s rolled back: %s\n", res.MigrationID, res.Reason)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// progressText renders a status body's progress (realmhook sends tablesDone,
// tablesTotal, rowsCopied, rowsTotal, percent; other apps send what they like).
func progressText(body []byte, code string) string {
	var s struct {
		Progress map[string]json.RawMessage `json:"progress"`
		Message  string                     `json:"message"`
	}
	_ = json.Unmarshal(body, &s)
	var parts []string
	if code != "" {
		parts = append(parts, code)
	}
	p := s.Progress
	num := func(k string) (string, bool) {
		v, ok := p[k]
		return strings.Trim(string(v), `"`), ok
	}
	if td, ok := num("tablesDone"); ok {
		tt, _ := num("tablesTotal")
		parts = append(parts, "tables "+td+"/"+orDash(tt))
	}
	if rc, ok := num("rowsCopied"); ok {
		rt, _ := num("rowsTotal")
		parts = append(parts, "rows "+rc+"/"+orDash(rt))
	}
	if pc, ok := num("percent"); ok {
		if f, err := strconv.ParseFloat(pc, 64); err == nil {
			pc = strconv.FormatFloat(f, 'f', 1, 64)
		}
		parts = append(parts, pc+"%")
	}
	if len(parts) == 0 && len(p) > 0 {
		raw, _ := json.Marshal(p)
		parts = append(parts, "progress "+string(raw))
	}
	if s.Message != "" {
		parts = append(parts, s.Message)
	}
	if len(parts) == 0 {
		return ""
	}
	return " — " + strings.Join(parts, ", ")
}
