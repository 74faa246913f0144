package hooks

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/realms"
)

// unauthorizedMessage is the same for an unknown tenant and a bad signature, so
// a caller without the secret learns nothing about which tenants exist.
const unauthorizedMessage = "unknown tenant or invalid token"

// reasonUnknownTenant labels the metric for a token whose issuer no realm knows.
const reasonUnknownTenant = "unknown_tenant"

// authMode says how a host call is bound to a realm.
type authMode int

const (
	// pinnedRealm: the call must come to the tenant's pinned realm; any other
	// realm answers 421 naming the right one (tenant API, enabled, disabled).
	pinnedRealm authMode = iota
	// anyRealm: the call may come to any realm's base URL and is resolved to
	// the tenant's current realm (migration hooks: which base URL the host uses
	// is not published).
	anyRealm
)

// authenticated is the outcome of verifying a host call.
type authenticated struct {
	called *realms.Realm // the realm whose base URL the call came to
	home   *realms.Realm // the realm holding the tenant's active record
	tenant *realmhook.Tenant
}

// calledRealm is the realm a request was addressed to, as instrument
// resolved it.
func (s *Server) calledRealm(r *http.Request) (*realms.Realm, error) {
	realm, ok := r.Context().Value(calledRealmKey).(*realms.Realm)
	if !ok {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "no realm served at %s%s", r.Host, r.URL.Path)
	}
	return realm, nil
}

// tenantLookup says where authentication reads the tenant record from.
type tenantLookup int

const (
	// freshLookup reads the database: for hooks that change state, which are
	// rare.
	freshLookup tenantLookup = iota
	// cachedLookup reads the realm's tenant cache (realms.Realm.Tenant): for
	// the routed request path (tenant API, /status). A token that does not
	// verify with the cached secret is tried again with a fresh read, so a
	// re-install's new secret works on every replica at once.
	cachedLookup
)

// authenticateHS256 verifies a call signed with a tenant's shared secret and
// finds the tenant. The qsh is always checked relative to the base URL the
// call was made to.
func (s *Server) authenticateHS256(r *http.Request, mode authMode, allowContextQSH bool, lookup tenantLookup) (*authenticated, error) {
	auth, err := s.authenticateHS256From(r, mode, allowContextQSH, lookup)
	var rej *connectjwt.RejectError
	if lookup == cachedLookup && (errors.Is(err, errUnknownTenant) || errors.As(err, &rej) && rej.Reason == connectjwt.ReasonSignature) {
		auth, err = s.authenticateHS256From(r, mode, allowContextQSH, freshLookup)
	}
	switch {
	case errors.Is(err, errUnknownTenant):
		return nil, s.rejectUnknown()
	case err != nil:
		return nil, s.reject(r, err)
	}
	return auth, nil
}

// errUnknownTenant: no served realm has an active record of the token's issuer.
var errUnknownTenant = errors.New("unknown tenant")

func (s *Server) authenticateHS256From(r *http.Request, mode authMode, allowContextQSH bool, lookup tenantLookup) (*authenticated, error) {
	called, err := s.calledRealm(r)
	if err != nil {
		return nil, err
	}
	token, err := connectjwt.TokenFromRequest(r)
	if err != nil {
		return nil, err
	}
	issuer, err := connectjwt.UnverifiedIssuer(token)
	if err != nil {
		return nil, err
	}
	if issuer == "" {
		return nil, &connectjwt.RejectError{Reason: connectjwt.ReasonIssuer, Detail: "token has no iss"}
	}

	locate, getTenant := s.opts.Realms.Locate, func(realm *realms.Realm, ctx context.Context, key string) (*realmhook.Tenant, error) {
		return realm.Store.GetTenant(ctx, key)
	}
	if lookup == cachedLookup {
		locate, getTenant = s.opts.Realms.LocateCached, (*realms.Realm).Tenant
	}

	verify := func(t *realmhook.Tenant) error {
		_, err := s.opts.Verifier.VerifyHS256(token, []byte(t.SharedSecret), issuer, r, called.BasePath(), allowContextQSH)
		return err
	}

	if mode == anyRealm {
		home, t, err := locate(r.Context(), issuer)
		if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
			return nil, errUnknownTenant
		} else if err != nil {
			return nil, err
		}
		if err := verify(t); err != nil {
			return nil, err
		}
		noteTenant(r, t.ClientKey, home.Key)
		return &authenticated{called: called, home: home, tenant: t}, nil
	}

	t, err := getTenant(called, r.Context(), issuer)
	switch {
	case err == nil && t.State == realmhook.TenantActive:
		if err := verify(t); err != nil {
			return nil, err
		}
		noteTenant(r, t.ClientKey, called.Key)
		return &authenticated{called: called, home: called, tenant: t}, nil
	case err == nil && t.State == realmhook.TenantMoved:
		// The moved copy still holds the secret until it is purged, so the
		// caller can be told where to go once it has proved who it is.
		if err := verify(t); err != nil {
			return nil, err
		}
		return nil, s.misdirected(called, t.MovedTo, t.ClientKey)
	case err != nil && realmhook.ErrorCode(err) != realmhook.ENOTFOUND:
		return nil, err
	}
	home, ht, err := locate(r.Context(), issuer)
	if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
		return nil, errUnknownTenant
	} else if err != nil {
		return nil, err
	}
	if err := verify(ht); err != nil {
		return nil, err
	}
	return nil, s.misdirected(called, home.Key, ht.ClientKey)
}

// reject turns a verification failure into a 401. Until the token's
// signature has verified with the tenant's key, every refusal reads the same,
// byte for byte, as an unknown tenant's: the caller has proved nothing, and
// any reason that differs by tenant would tell it which tenants exist. The
// reason goes to the metrics and the log instead. Once the signature verified,
// the caller holds the key and is told what was wrong.
func (s *Server) reject(r *http.Request, err error) error {
	var rej *connectjwt.RejectError
	if !errors.As(err, &rej) {
		return err
	}
	s.metrics.jwtRejections.WithLabelValues(rej.Reason).Inc()
	s.log(r).Info("token refused", slog.String("reason", rej.Reason), slog.String("detail", rej.Detail),
		slog.Bool("signature_verified", rej.Verified))
	e := realmhook.Errorf(realmhook.EUNAUTHORIZED, unauthorizedMessage)
	if !rej.Verified {
		return e
	}
	return e.With("reason", rej.Reason).With("detail", rej.Detail)
}

func (s *Server) rejectUnknown() error {
	s.metrics.jwtRejections.WithLabelValues(reasonUnknownTenant).Inc()
	return realmhook.Errorf(realmhook.EUNAUTHORIZED, unauthorizedMessage)
}

// misdirected is the 421 that tells a tenant which realm serves it.
func (s *Server) misdirected(called *realms.Realm, expected, clientKey string) error {
	s.metrics.misdirected.WithLabelValues(called.Key, expected).Inc()
	e := realmhook.Errorf(realmhook.EMISDIRECTED, "tenant %q is served by realm %s, not %s", clientKey, expected, called.Key).
		With("expectedRealm", expected).
		With("actualRealm", called.Key)
	if realm, ok := s.opts.Realms.Get(expected); ok {
		e = e.With("correctBaseUrl", realm.BaseURL)
	}
	return e
}
