// Package fakeapp is a small in-memory Atlassian Connect app that speaks the
// data residency protocol, with switchable defects, so hostsim and realmctl can
// be tested without realmhook.
package fakeapp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/realmhook/realmhook/connectjwt"
)

// Defects make the app break the protocol in one way each.
type Defects struct {
	IgnoreQSH             bool // accepts tokens whatever their qsh, context-qsh included
	AcceptForgedInstall   bool // accepts installs without verifying signature, kid or aud
	NoConcurrencyLimit    bool // never answers E0004
	ScheduleNotIdempotent bool // a repeated schedule is answered 409 E9999
	FailMigrations        bool // status reports failed E9999 once copying
}

// App is the fake Connect app. Serve it with httptest; its descriptor names
// the base URLs under the Host it is called on: global at "/", each realm at
// "/realms/<lower-case key>".
type App struct {
	Defects Defects
	// KeysURL is the signed-install key server the app trusts.
	KeysURL string
	// Realms are the regionBaseUrls keys; nil means EU and US.
	Realms []string
	// Limit is the number of concurrent migrations; 0 means 3.
	Limit int
	// PollsUntilReady is how many status polls answer "copying" before
	// "ready-to-commit".
	PollsUntilReady int
	// Now is the app's clock for token checks; nil means time.Now.
	Now func() time.Time

	mu         sync.Mutex
	keys       *connectjwt.KeyServer
	tenants    map[string]*tenant
	migrations map[string]*migration // by clientKey + "/" + migrationId
	calls      map[string]int
	failNext   map[string][]failure
}

type tenant struct {
	clientKey, secret, realm string
	installed                bool
	properties               map[string]json.RawMessage
}

type migration struct {
	id, source, target, state string
	polls                     int
}

type failure struct {
	status int
	code   string
}

// Migration states the fake reports.
const (
	stateScheduled  = "scheduled"
	stateCopying    = "copying"
	stateReady      = "ready-to-commit"
	stateFailed     = "failed"
	stateCommitted  = "committed"
	stateRolledBack = "rolled-back"
)

// New returns an app trusting the key server at keysURL.
func New(keysURL string, d Defects) *App {
	return &App{KeysURL: keysURL, Defects: d}
}

// FailNext makes the next n calls of hook ("schedule", "start", "status",
// "commit", "rollback", "installed", …) answer status with errorResponseCode
// code ("" for none).
func (a *App) FailNext(hook string, n, status int, code string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failNext == nil {
		a.failNext = make(map[string][]failure)
	}
	for range n {
		a.failNext[hook] = append(a.failNext[hook], failure{status, code})
	}
}

// Calls returns how many calls of hook the app answered.
func (a *App) Calls(hook string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[hook]
}

// TenantRealm returns the realm the tenant lives in, "" if unknown.
func (a *App) TenantRealm(clientKey string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.tenants[clientKey]; ok {
		return t.realm
	}
	return ""
}

// MigrationState returns the state of a tenant's migration, "" if unknown.
func (a *App) MigrationState(clientKey, id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if m, ok := a.migrations[clientKey+"/"+id]; ok {
		return m.state
	}
	return ""
}

func (a *App) realms() []string {
	if a.Realms == nil {
		return []string{"EU", "US"}
	}
	return a.Realms
}

func (a *App) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// ServeHTTP implements http.Handler.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin := "http://" + r.Host
	if r.URL.Path == "/atlassian-connect.json" {
		a.descriptor(w, origin)
		return
	}
	realm, basePath, rest := "global", "", r.URL.Path
	if after, ok := strings.CutPrefix(r.URL.Path, "/realms/"); ok {
		key, tail, _ := strings.Cut(after, "/")
		realm, basePath, rest = strings.ToUpper(key), "/realms/"+key, "/"+tail
		if !slices.Contains(a.realms(), realm) {
			http.NotFound(w, r)
			return
		}
	}
	req := &request{a: a, w: w, r: r, realm: realm, basePath: basePath, origin: origin}
	switch {
	case r.Method == "POST" && (rest == "/installed" || rest == "/uninstalled"):
		req.install(strings.TrimPrefix(rest, "/"))
	case r.Method == "POST" && (rest == "/enabled" || rest == "/disabled"):
		if req.auth(strings.TrimPrefix(rest, "/")) != nil {
			req.reply(204, nil)
		}
	case strings.HasPrefix(rest, "/dare-migration/"):
		req.hook(strings.TrimPrefix(rest, "/dare-migration/"))
	case strings.HasPrefix(rest, "/api/v1/properties/"):
		req.property(strings.TrimPrefix(rest, "/api/v1/properties/"))
	case r.Method == "GET" && rest == "/page":
		// A page module, as an app behind a gateway serves one.
		if req.auth("page") != nil {
			req.reply(200, map[string]string{"page": "fakeapp"})
		}
	default:
		http.NotFound(w, r)
	}
}

func (a *App) descriptor(w http.ResponseWriter, origin string) {
	regions := map[string]string{}
	for _, r := range a.realms() {
		regions[r] = origin + "/realms/" + strings.ToLower(r)
	}
	writeJSON(w, 200, map[string]any{
		"key":            "com.example.fakeapp",
		"baseUrl":        origin,
		"regionBaseUrls": regions,
		"apiMigrations":  map[string]bool{"signed-install": true},
		"lifecycle": map[string]string{
			"installed": "/installed", "uninstalled": "/uninstalled",
			"enabled": "/enabled", "disabled": "/disabled", "dare-migration": "/dare-migration",
		},
	})
}

// request is one call being answered.
type request struct {
	a        *App
	w        http.ResponseWriter
	r        *http.Request
	realm    string
	basePath string
	origin   string
}

func (q *request) reply(status int, body any) {
	if body == nil {
		q.w.WriteHeader(status)
		return
	}
	writeJSON(q.w, status, body)
}

func (q *request) fail(status int, code, msg string) {
	body := map[string]string{"error": "refused", "message": msg}
	if code != "" {
		body["errorResponseCode"] = code
	}
	q.reply(status, body)
}

// count records the call and reports whether an injected failure answered it.
func (q *request) count(hook string) bool {
	a := q.a
	a.mu.Lock()
	if a.calls == nil {
		a.calls = make(map[string]int)
	}
	a.calls[hook]++
	var f *failure
	if fs := a.failNext[hook]; len(fs) > 0 {
		f, a.failNext[hook] = &fs[0], fs[1:]
	}
	a.mu.Unlock()
	if f != nil {
		q.fail(f.status, f.code, "injected failure")
		return true
	}
	return false
}

func (q *request) install(event string) {
	if q.count(event) {
		return
	}
	var body struct {
		ClientKey    string `json:"clientKey"`
		SharedSecret string `json:"sharedSecret"`
	}
	if err := json.NewDecoder(q.r.Body).Decode(&body); err != nil || body.ClientKey == "" {
		q.fail(400, "", "bad lifecycle body")
		return
	}
	token, err := connectjwt.TokenFromRequest(q.r)
	if err != nil {
		q.fail(401, "", err.Error())
		return
	}
	var iss string
	if q.a.Defects.AcceptForgedInstall {
		iss, err = connectjwt.UnverifiedIssuer(token)
	} else {
		audiences := []string{q.origin}
		for _, r := range q.a.realms() {
			audiences = append(audiences, q.origin+"/realms/"+strings.ToLower(r))
		}
		var c *connectjwt.Claims
		c, err = q.verifier().VerifyInstall(q.r.Context(), token, q.a.keyServer(), q.r, q.basePath, audiences)
		if c != nil {
			iss = c.Issuer
		}
	}
	if err != nil {
		q.fail(401, "", err.Error())
		return
	}
	if iss != body.ClientKey {
		q.fail(401, "", "iss is not the body's clientKey")
		return
	}
	a := q.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tenants == nil {
		a.tenants = make(map[string]*tenant)
	}
	t, ok := a.tenants[body.ClientKey]
	if !ok {
		t = &tenant{clientKey: body.ClientKey, realm: q.realm, properties: map[string]json.RawMessage{}}
		a.tenants[body.ClientKey] = t
	}
	t.installed = event == "installed"
	if t.installed {
		t.secret = body.SharedSecret
	}
	q.reply(204, nil)
}

func (q *request) verifier() connectjwt.Verifier {
	return connectjwt.Verifier{Leeway: 5 * time.Second, Now: q.a.now}
}

func (a *App) keyServer() *connectjwt.KeyServer {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.keys == nil {
		a.keys = &connectjwt.KeyServer{BaseURL: a.KeysURL, Now: a.Now}
	}
	return a.keys
}

// auth verifies an HS256 call and returns its tenant, or answers 401 and
// returns nil.
func (q *request) auth(hook string) *tenant {
	if q.count(hook) {
		return nil
	}
	token, err := connectjwt.TokenFromRequest(q.r)
	if err != nil {
		q.fail(401, "", err.Error())
		return nil
	}
	iss, err := connectjwt.UnverifiedIssuer(token)
	if err != nil {
		q.fail(401, "", err.Error())
		return nil
	}
	q.a.mu.Lock()
	t, ok := q.a.tenants[iss]
	var secret string
	installed := ok && t.installed
	if ok {
		secret = t.secret
	}
	q.a.mu.Unlock()
	if !installed {
		q.fail(401, "", "unknown tenant")
		return nil
	}
	_, err = q.verifier().VerifyHS256(token, []byte(secret), iss, q.r, q.basePath, false)
	var rej *connectjwt.RejectError
	if err != nil && q.a.Defects.IgnoreQSH && errors.As(err, &rej) &&
		(rej.Reason == connectjwt.ReasonQSH || rej.Reason == connectjwt.ReasonContextQSH) {
		err = nil
	}
	if err != nil {
		q.fail(401, "", err.Error())
		return nil
	}
	return t
}

func (q *request) hook(name string) {
	t := q.auth(name)
	if t == nil {
		return
	}
	var body struct {
		MigrationID string `json:"migrationId"`
		Location    string `json:"location"`
	}
	if name == "status" {
		body.MigrationID = q.r.URL.Query().Get("migrationId")
	} else if err := json.NewDecoder(q.r.Body).Decode(&body); err != nil {
		q.fail(400, "E9999", "bad body")
		return
	}
	if body.MigrationID == "" {
		q.fail(400, "E9999", "no migrationId")
		return
	}
	a := q.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.migrations == nil {
		a.migrations = make(map[string]*migration)
	}
	key := t.clientKey + "/" + body.MigrationID
	m := a.migrations[key]
	if name != "schedule" && m == nil {
		q.fail(404, "E0001", "migration not scheduled")
		return
	}
	switch name {
	case "schedule":
		switch {
		case m != nil && a.Defects.ScheduleNotIdempotent:
			q.fail(409, "E9999", "already scheduled")
		case m != nil:
			q.reply(200, map[string]string{"status": m.state})
		case !slices.Contains(a.realms(), body.Location) && body.Location != "global":
			q.fail(400, "E0002", "realm not supported")
		case !a.Defects.NoConcurrencyLimit && a.activeLocked() >= a.limit():
			q.fail(409, "E0004", "too many concurrent migrations")
		default:
			a.migrations[key] = &migration{id: body.MigrationID, source: t.realm, target: body.Location, state: stateScheduled}
			q.reply(202, map[string]string{"status": stateScheduled})
		}
	case "start":
		if m.state == stateScheduled {
			m.state = stateCopying
		}
		q.reply(202, map[string]string{"status": m.state})
	case "status":
		if m.state == stateCopying {
			m.polls++
			switch {
			case a.Defects.FailMigrations:
				m.state = stateFailed
			case m.polls > a.PollsUntilReady:
				m.state = stateReady
			}
		}
		resp := map[string]any{"status": m.state, "progress": map[string]any{
			"tablesDone": min(m.polls, 2), "tablesTotal": 2, "rowsCopied": 10 * min(m.polls, 2), "rowsTotal": 20, "percent": 50 * min(m.polls, 2),
		}}
		if m.state == stateFailed {
			resp["errorResponseCode"] = "E9999"
		}
		q.reply(200, resp)
	case "commit":
		switch m.state {
		case stateReady:
			m.state = stateCommitted
			t.realm = m.target
			q.reply(200, map[string]string{"status": m.state})
		case stateCommitted:
			q.reply(200, map[string]string{"status": m.state})
		default:
			q.fail(409, "E9999", "not ready to commit: "+m.state)
		}
	case "rollback":
		if m.state == stateCommitted {
			q.fail(409, "E9999", "already committed")
			return
		}
		m.state = stateRolledBack
		q.reply(200, map[string]string{"status": m.state})
	default:
		http.NotFound(q.w, q.r)
	}
}

func (a *App) limit() int {
	if a.Limit <= 0 {
		return 3
	}
	return a.Limit
}

func (a *App) activeLocked() int {
	n := 0
	for _, m := range a.migrations {
		switch m.state {
		case stateScheduled, stateCopying, stateReady:
			n++
		}
	}
	return n
}

// property is the tenant data API, served in the tenant's realm only.
func (q *request) property(key string) {
	t := q.auth("properties")
	if t == nil {
		return
	}
	a := q.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.realm != q.realm {
		q.reply(421, map[string]string{"error": "misdirected_request", "expectedRealm": t.realm, "actualRealm": q.realm})
		return
	}
	switch q.r.Method {
	case "PUT":
		var v json.RawMessage
		if err := json.NewDecoder(q.r.Body).Decode(&v); err != nil {
			q.fail(400, "", "value is not JSON")
			return
		}
		t.properties[key] = v
		q.reply(204, nil)
	case "GET":
		v, ok := t.properties[key]
		if !ok {
			q.fail(404, "", fmt.Sprintf("no property %q", key))
			return
		}
		q.w.Header().Set("Content-Type", "application/json")
		q.w.WriteHeader(200)
		q.w.Write(v)
	default:
		q.fail(405, "", "method not allowed")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
