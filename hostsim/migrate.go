package hostsim

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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
		token = h.hs256(m.tenant)
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
// commit (or roll back), printing each step to Out. On commit the tenant's realm
// becomes the target. The error wraps ErrNotCommitted (or ErrNotRolledBack when
// a rollback was asked for) if the migration did not end that way.
func (h *Host) Migrate(ctx context.Context, opts MigrateOptions) (MigrateResult, error) {
	t, err := h.mustTenant(opts.ClientKey)
	if err != nil {
		return MigrateResult{}, err
	}
	to := NormalizeRealm(opts.To)
	if to == "" {
		return MigrateResult{}, realmhook.Errorf(realmhook.EINVALID, "migrate: target realm is empty")
	}
	if to == t.Realm {
		return MigrateResult{}, realmhook.Errorf(realmhook.EINVALID, "migrate: tenant %s already lives in realm %s", t.ClientKey, to)
	}
	window, poll := opts.Window, opts.Poll
	if window <= 0 {
		window = DefaultWindow
	}
	if poll <= 0 {
		poll = DefaultPoll
	}
	id := opts.MigrationID
	if id == "" {
		b, err := randomBytes(4)
		if err != nil {
			return MigrateResult{}, err
		}
		id = strconv.FormatUint(uint64(binary.BigEndian.Uint32(b)), 10)
	}
	m, err := h.migrationTarget(ctx, t)
	if err != nil {
		return MigrateResult{}, err
	}

	res := MigrateResult{MigrationID: id, ClientKey: t.ClientKey, From: t.Realm, To: to}
	out := h.out()
	start := h.now()
	end := start.Add(window)
	body := &migrationBody{StartTime: isoTime(start), EndTime: isoTime(end), Location: to, MigrationID: id}
	fmt.Fprintf(out, "migration %s: tenant %s from %s to %s, window %s → %s, hooks at %s%s\n",
		id, t.ClientKey, t.Realm, to, body.StartTime, body.EndTime, m.base, m.prefix)

	call := func(hook string, b *migrationBody) (*Response, bool) {
		if hook != HookStatus {
			fmt.Fprintf(out, "%-9s POST %s\n", hook, m.url(hook, id))
		}
		resp, err := h.hook(ctx, m, hook, b, nil)
		if err != nil {
			fmt.Fprintf(out, "  ✗ %v\n", err)
			res.Reason = fmt.Sprintf("%s: %v", hook, err)
			return nil, false
		}
		res.Calls = append(res.Calls, resp)
		if hook != HookStatus {
			fmt.Fprintf(out, "  ← %s\n", resp.Summary())
		}
		if !resp.OK() {
			res.Reason = fmt.Sprintf("%s answered %s", hook, resp.Summary())
			return resp, false
		}
		return resp, true
	}
	idOnly := &migrationBody{MigrationID: id}
	rollback := func(why string) {
		fmt.Fprintf(out, "rolling back: %s\n", why)
		if _, ok := call(HookRollback, idOnly); ok {
			res.Outcome, res.Reason = OutcomeRolledBack, why
		} else {
			res.Outcome = OutcomeFailed
		}
	}

	wantRollback := opts.Rollback
	if _, ok := call(HookSchedule, body); !ok {
		// The host ends the migration for this app: nothing started to undo.
		res.Outcome = OutcomeFailed
		return res, h.migrateErr(res, wantRollback)
	}
	if _, ok := call(HookStart, body); !ok {
		rollback(res.Reason)
		return res, h.migrateErr(res, wantRollback)
	}
	started := h.now()
	ready := false
	for !ready {
		resp, ok := call(HookStatus, idOnly)
		if resp != nil {
			res.LastStatus, res.ErrorResponseCode = resp.Status(), resp.ErrorResponseCode()
			fmt.Fprintf(out, "%-9s %d %s%s\n", HookStatus, resp.StatusCode, orDash(res.LastStatus), progressText(resp.Body, res.ErrorResponseCode))
		}
		now := h.now()
		switch {
		case !ok:
			rollback(res.Reason)
		case res.LastStatus == StatusReadyToCommit:
			ready = true
			continue
		case res.LastStatus == StatusFailed:
			rollback("app reported failed " + orDash(res.ErrorResponseCode))
		case !now.Before(end):
			rollback("window ended before the app was ready to commit")
		case opts.CancelAfter > 0 && !now.Before(started.Add(opts.CancelAfter)):
			wantRollback = true
			rollback(fmt.Sprintf("cancelled after %s", opts.CancelAfter))
		default:
			wait := poll
			if d := end.Sub(now); d < wait {
				wait = d
			}
			if opts.CancelAfter > 0 {
				if d := started.Add(opts.CancelAfter).Sub(now); d < wait {
					wait = d
				}
			}
			if err := h.sleep(ctx, wait); err != nil {
				res.Reason = "interrupted: " + err.Error()
				rollback(res.Reason)
				return res, h.migrateErr(res, wantRollback)
			}
			continue
		}
		return res, h.migrateErr(res, wantRollback)
	}

	if opts.Rollback {
		rollback("rollback asked for")
		return res, h.migrateErr(res, wantRollback)
	}
	if _, ok := call(HookCommit, idOnly); !ok {
		rollback(res.Reason)
		return res, h.migrateErr(res, wantRollback)
	}
	res.Outcome, res.Reason = OutcomeCommitted, "app committed"
	t.Realm = to
	if err := h.putTenant(t); err != nil {
		return res, fmt.Errorf("migration committed, but saving the tenant's new realm failed: %w", err)
	}
	fmt.Fprintf(out, "migration %s committed: tenant %s now lives in %s\n", id, t.ClientKey, to)
	return res, nil
}

// migrateErr says whether the migration ended as asked.
func (h *Host) migrateErr(res MigrateResult, wantRollback bool) error {
	switch {
	case wantRollback && res.Outcome == OutcomeRolledBack:
		fmt.Fprintf(h.out(), "migration %s rolled back: %s\n", res.MigrationID, res.Reason)
		return nil
	case wantRollback:
		return fmt.Errorf("migration %s of %s: %w: %s", res.MigrationID, res.ClientKey, ErrNotRolledBack, res.Reason)
	case res.Outcome == OutcomeCommitted:
		return nil
	default:
		return fmt.Errorf("migration %s of %s (%s): %w: %s", res.MigrationID, res.ClientKey, res.Outcome, ErrNotCommitted, res.Reason)
	}
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
