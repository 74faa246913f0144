// Package identity answers, for every route, who is calling, for which
// tenant, and where that tenant lives. It verifies the host's tokens — a
// Connect HS256 token whose qsh covers the request, a frontend token
// (context-qsh) where the route allows one, and the RS256 signed install —
// and finds the tenant's realm, by the route's policy; when Forge is on, a
// Forge Invocation Token too, on any of those routes, resolved to the
// installation's tenant. Nothing else in realmhook verifies a token.
//
// Refusals are *realmhook.Error values with one of a few codes, which the
// HTTP layer maps to statuses in its one table: EUNAUTHORIZED (401: no token,
// a bad one, or an unknown tenant, which read alike until the signature
// verified), EMISDIRECTED (421: the tenant lives in another realm; the error
// names it), EINVALID (400: an unusable request); anything else is the
// database failing.
package identity

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/forgefit"
	"github.com/realmhook/realmhook/identitytoken"
	"github.com/realmhook/realmhook/realms"
)

// Kind is a kind of token.
type Kind string

// The token kinds a route may accept.
const (
	// ConnectHS256: signed with the tenant's shared secret, qsh for this request.
	ConnectHS256 Kind = "connect-hs256"
	// ContextHS256: signed with the tenant's shared secret by the app's own
	// frontend, qsh "context-qsh": valid for no request in particular.
	ContextHS256 Kind = "connect-context-qsh"
	// SignedInstall: the host's RS256 installed/uninstalled call.
	SignedInstall Kind = "signed-install"
	// ForgeFIT: a Forge Invocation Token (RS256 from Atlassian's JWKS). Any
	// ConnectHS256 route accepts one too, when Forge is on; as a route's
	// Kind it means a lifecycle event, verified but not yet a tenant's.
	ForgeFIT Kind = "forge-fit"
)

// Placement says which realm a route may be called on.
type Placement int

const (
	// PinnedRealm: only on the tenant's pinned realm; any other realm answers
	// 421 naming the right one (tenant API, app routes, enabled, disabled).
	PinnedRealm Placement = iota
	// AnyRealm: on any served realm's base URL, resolved to the tenant's
	// current realm (migration hooks: which base URL the host uses is not
	// published).
	AnyRealm
)

// Lookup says where the tenant record is read from.
type Lookup int

const (
	// Fresh reads the database: for calls that change state, which are rare.
	Fresh Lookup = iota
	// Cached reads the realm's tenant cache (realms.Realm.Tenant), for the
	// routed request path. A token that does not verify with a cached secret,
	// or an issuer the cache does not know, is tried again fresh, so a
	// re-install's new secret works on every replica at once.
	Cached
)

// Policy is what a route asks of its callers.
type Policy struct {
	// Kind is SignedInstall or ConnectHS256.
	Kind Kind
	// The rest is for ConnectHS256 routes: whether a frontend token
	// (ContextHS256) is accepted too, which realm the route may be called
	// on, and where the tenant record is read from.
	AllowContextQSH bool
	Realm           Placement
	Lookup          Lookup
	// LastSeen (AnyRealm routes): while the databases do not answer, verify
	// against the tenant as this process last verified it (Options.LastSeen),
	// for /status, which the host must never see fail.
	LastSeen bool
	// PinForge (PinnedRealm routes): a Forge installation seen for the
	// first time becomes a tenant pinned to the realm called (a Forge
	// invocation of the app), rather than an unknown tenant.
	PinForge bool
}

// Identity is a verified caller.
type Identity struct {
	Kind Kind
	// ClientKey is the tenant's (the verified iss).
	ClientKey string
	// Tenant is the tenant's active record in Home; nil for a signed install,
	// whose body says who the tenant is about to be.
	Tenant *realmhook.Tenant
	// Called is the realm whose base URL the call came to; Home the one
	// holding the tenant (nil for a signed install).
	Called, Home *realms.Realm
	Claims       *connectjwt.Claims
	// Forge is a FIT's claims (Kind ForgeFIT); Claims is nil then.
	Forge *forgefit.Claims
	// Stale: the tenant record came from Options.LastSeen, not a database.
	Stale bool
}

// Authenticator verifies callers; Layer is the implementation.
type Authenticator interface {
	Authenticate(r *http.Request, called *realms.Realm, p Policy) (*Identity, error)
}

// Options wire a Layer.
type Options struct {
	Realms   *realms.Registry
	Verifier connectjwt.Verifier
	// InstallKeys resolves signed-install public keys.
	InstallKeys connectjwt.KeySource
	// Log returns the logger for a request (carrying its id); nil logs to
	// slog.Default().
	Log func(*http.Request) *slog.Logger
	// Rejected counts a refused token by reason; Misdirected a 421. Either
	// may be nil.
	Rejected    func(reason string)
	Misdirected func(calledRealm, expectedRealm string)
	// LastSeen returns the tenant record (and its home realm) this process
	// last verified a caller with, for policies with LastSeen; may be nil.
	LastSeen func(clientKey string) (*realms.Realm, *realmhook.Tenant, bool)
	// Forge verifies Forge Invocation Tokens; nil when Forge is off, and a
	// Bearer token then reads like any other bad token.
	Forge *forgefit.Verifier
	// Now is the clock of re-install windows; nil: time.Now.
	Now func() time.Time
	// Remote finds tenants that no realm this process serves holds, in the
	// realms other processes serve (the regional shape); nil: none.
	Remote Remote
}

// Remote asks the processes of the realms this one does not serve where a
// tenant lives.
type Remote interface {
	// Locate returns the realm holding clientKey where the token of r (a
	// call to a realm whose base path is basePath) verified; "" when no
	// realm holds it or the token verified nowhere. A realm that did not
	// answer fails it with EUNAVAILABLE: the tenant may be there.
	Locate(ctx context.Context, clientKey string, r *http.Request, basePath string, allowContextQSH bool) (string, error)
}

// HeldElsewhere is in the chain of the 421 that refuses a call for a
// tenant another realm's process holds, naming that realm: a caller that
// can forward the call there (a migration hook) finds it with errors.As.
type HeldElsewhere struct {
	Realm, ClientKey string
}

func (e *HeldElsewhere) Error() string { return "tenant held by realm " + e.Realm + "'s process" }

type localOnlyKey struct{}

// LocalOnly marks ctx so that the Layer looks for tenants only in the
// realms this process serves: a call another process forwarded or asked
// about must not be asked about again.
func LocalOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, localOnlyKey{}, true)
}

// IsLocalOnly reports whether ctx was marked by LocalOnly.
func IsLocalOnly(ctx context.Context) bool {
	v, _ := ctx.Value(localOnlyKey{}).(bool)
	return v
}

// Layer is the identity layer.
type Layer struct {
	opts Options
	// forgeKeys remembers which tenant (client key) an installation is.
	forgeKeys sync.Map
}

var _ Authenticator = (*Layer)(nil)

// New returns the identity layer.
func New(opts Options) *Layer { return &Layer{opts: opts} }

// ForgeOn reports whether the layer verifies Forge Invocation Tokens.
func (l *Layer) ForgeOn() bool { return l.opts.Forge != nil }

// unauthorizedMessage is the same for an unknown tenant and a bad signature,
// so a caller without the secret learns nothing about which tenants exist.
const unauthorizedMessage = "unknown tenant or invalid token"

// ReasonUnknownTenant labels a token whose issuer no served realm knows.
const ReasonUnknownTenant = "unknown_tenant"

// errUnknownTenant: no served realm has an active record of the issuer.
var errUnknownTenant = errors.New("unknown tenant")

// Authenticate verifies the request's token for a route of policy p, on the
// realm called.
func (l *Layer) Authenticate(r *http.Request, called *realms.Realm, p Policy) (*Identity, error) {
	if p.Kind == SignedInstall {
		return l.signedInstall(r, called)
	}
	if l.opts.Forge != nil && (p.Kind == ForgeFIT || forgefit.IsBearer(r)) {
		return l.forge(r, called, p)
	}
	if p.Kind == ForgeFIT {
		return nil, l.Reject(r, &connectjwt.RejectError{Reason: connectjwt.ReasonMissing, Detail: "Forge is not configured (forge.appId)"})
	}
	id, err := l.hs256(r, called, p, p.Lookup)
	var rej *connectjwt.RejectError
	if p.Lookup == Cached && (errors.Is(err, errUnknownTenant) || errors.As(err, &rej) && rej.Reason == connectjwt.ReasonSignature) {
		id, err = l.hs256(r, called, p, Fresh)
	}
	switch {
	case errors.Is(err, errUnknownTenant):
		l.rejected(ReasonUnknownTenant)
		return nil, realmhook.Errorf(realmhook.EUNAUTHORIZED, unauthorizedMessage)
	case err != nil:
		return nil, l.Reject(r, err)
	}
	return id, nil
}

func (l *Layer) hs256(r *http.Request, called *realms.Realm, p Policy, lookup Lookup) (*Identity, error) {
	token, err := connectjwt.TokenFromRequest(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	locate, get := l.opts.Realms.Locate, func(realm *realms.Realm, issuer string) (*realmhook.Tenant, error) {
		return realm.Store.GetTenant(ctx, issuer)
	}
	if lookup == Cached {
		locate = l.opts.Realms.LocateCached
		get = func(realm *realms.Realm, issuer string) (*realmhook.Tenant, error) { return realm.Tenant(ctx, issuer) }
	}

	// find decides, from the token's iss, whose secret verifies it and what
	// the answer is once it does: the identity, or a 421 to the realm that
	// holds the tenant (told only to a caller that proved who it is).
	var tenant *realmhook.Tenant
	var home *realms.Realm
	var misdirected bool
	var misdirectTo string
	var stale bool
	find := func(issuer string) ([]byte, error) {
		if p.Realm == PinnedRealm {
			t, err := get(called, issuer)
			switch {
			case err == nil && t.State == realmhook.TenantActive:
				tenant, home = t, called
				return []byte(t.SharedSecret), nil
			case err == nil && t.MovedAway():
				// The moved copy still holds the secret until it is purged.
				tenant, misdirected, misdirectTo = t, true, t.MovedTo
				return []byte(t.SharedSecret), nil
			case err != nil && realmhook.ErrorCode(err) != realmhook.ENOTFOUND:
				return nil, err
			}
		}
		h, t, err := locate(ctx, issuer)
		if realmhook.ErrorCode(err) == realmhook.EUNAVAILABLE && p.Realm == AnyRealm && p.LastSeen && l.opts.LastSeen != nil {
			if sh, st, ok := l.opts.LastSeen(issuer); ok {
				h, t, err, stale = sh, st, nil, true
			}
		}
		if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
			// Only once the database said so: the cache may be behind.
			if lookup == Fresh && l.opts.Remote != nil && !IsLocalOnly(ctx) {
				return nil, l.remote(r, called, p, issuer)
			}
			return nil, errUnknownTenant
		} else if err != nil {
			return nil, err
		}
		tenant = t
		if p.Realm == PinnedRealm {
			misdirected, misdirectTo = true, h.Key
		} else {
			home = h
		}
		return []byte(t.SharedSecret), nil
	}
	c, err := l.opts.Verifier.VerifyHS256For(token, find, r, called.BasePath(), p.AllowContextQSH)
	var held *HeldElsewhere
	if errors.As(err, &held) {
		// The token verified in the realm that holds the tenant.
		e := l.misdirected(called, held.Realm, held.ClientKey)
		e.Err = held
		return nil, e
	}
	if err != nil {
		return nil, err
	}
	if misdirected {
		return nil, l.Misdirected(called, misdirectTo, tenant.ClientKey)
	}
	kind := ConnectHS256
	if c.QSH == connectjwt.ContextQSH {
		kind = ContextHS256
	}
	return &Identity{Kind: kind, ClientKey: tenant.ClientKey, Tenant: tenant, Called: called, Home: home, Claims: c, Stale: stale}, nil
}

// signedInstall verifies an RS256 installed/uninstalled call. The caller
// still holds the body's clientKey against the identity (RequireIssuer).
func (l *Layer) signedInstall(r *http.Request, called *realms.Realm) (*Identity, error) {
	token, err := connectjwt.TokenFromRequest(r)
	if err != nil {
		return nil, l.Reject(r, err)
	}
	c, err := l.opts.Verifier.VerifyInstall(r.Context(), token, l.opts.InstallKeys, r, called.BasePath(), l.opts.Realms.BaseURLs())
	if err != nil {
		return nil, l.Reject(r, err)
	}
	return &Identity{Kind: SignedInstall, ClientKey: c.Issuer, Called: called, Claims: c}, nil
}

// RequireIssuer refuses a signed install whose body names another tenant
// than the token's iss.
func (l *Layer) RequireIssuer(r *http.Request, id *Identity, clientKey string) error {
	if id.ClientKey != clientKey {
		return l.Reject(r, &connectjwt.RejectError{Reason: connectjwt.ReasonIssuer, Detail: "iss does not match the body's clientKey", Verified: true})
	}
	return nil
}

// Reject turns a verification failure into a 401. Until the token's
// signature has verified with the tenant's key, every refusal reads the same,
// byte for byte, as an unknown tenant's: the caller has proved nothing, and
// any reason that differs by tenant would tell it which tenants exist. The
// reason goes to the metrics and the log instead. Once the signature
// verified, the caller holds the key and is told what was wrong. Errors that
// are not refusals are returned as they are.
func (l *Layer) Reject(r *http.Request, err error) error {
	var rej *connectjwt.RejectError
	if !errors.As(err, &rej) {
		return err
	}
	l.rejected(rej.Reason)
	l.log(r).Info("token refused", slog.String("reason", rej.Reason), slog.String("detail", rej.Detail),
		slog.Bool("signature_verified", rej.Verified))
	e := realmhook.Errorf(realmhook.EUNAUTHORIZED, unauthorizedMessage)
	if !rej.Verified {
		return e
	}
	return e.With("reason", rej.Reason).With("detail", rej.Detail)
}

// remote asks the other realms' processes about a tenant no served realm
// holds: a *HeldElsewhere when one holds it and the token verified there.
func (l *Layer) remote(r *http.Request, called *realms.Realm, p Policy, issuer string) error {
	realm, err := l.opts.Remote.Locate(r.Context(), issuer, r, called.BasePath(), p.AllowContextQSH)
	switch {
	case err != nil:
		return err
	case realm == "":
		return errUnknownTenant
	}
	return &HeldElsewhere{Realm: realm, ClientKey: issuer}
}

// Misdirected is the 421 that tells a tenant which realm serves it.
func (l *Layer) Misdirected(called *realms.Realm, expected, clientKey string) error {
	return l.misdirected(called, expected, clientKey)
}

func (l *Layer) misdirected(called *realms.Realm, expected, clientKey string) *realmhook.Error {
	if l.opts.Misdirected != nil {
		l.opts.Misdirected(called.Key, expected)
	}
	e := realmhook.Errorf(realmhook.EMISDIRECTED, "tenant %q is served by realm %s, not %s", clientKey, expected, called.Key).
		With("expectedRealm", expected).
		With("actualRealm", called.Key)
	if realm, ok := l.opts.Realms.Get(expected); ok {
		e = e.With("correctBaseUrl", realm.BaseURL)
	}
	return e
}

func (l *Layer) rejected(reason string) {
	if l.opts.Rejected != nil {
		l.opts.Rejected(reason)
	}
}

func (l *Layer) log(r *http.Request) *slog.Logger {
	if l.opts.Log != nil {
		return l.opts.Log(r)
	}
	return slog.Default()
}

// Token is what the gateway's X-Realmhook-Identity tells the app behind it
// about this caller: the tenant and the realm serving it, with the
// protocol; a Connect token's user (sub) and context, or a Forge token's
// installation, cloud id, principal (as the user too) and context. Only for a tenant's identity (Home
// set).
func (id *Identity) Token() identitytoken.Identity {
	t := identitytoken.Identity{ClientKey: id.ClientKey, Protocol: identitytoken.ProtocolConnect}
	if id.Home != nil {
		t.Realm = id.Home.Key
	}
	if id.Tenant != nil {
		t.Frozen = id.Tenant.Frozen()
	}
	switch {
	case id.Forge != nil:
		t.Protocol = identitytoken.ProtocolForge
		t.InstallationID = forgefit.InstallationID(id.Forge.App.InstallationID)
		t.CloudID = id.Forge.CloudID()
		t.Principal = id.Forge.Principal
		t.User = id.Forge.Principal
		if id.Forge.Context != nil {
			t.Context, _ = json.Marshal(id.Forge.Context)
		}
	case id.Claims != nil:
		t.User = id.Claims.Subject
		t.Context = id.Claims.Context
	}
	return t
}
