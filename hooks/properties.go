package hooks

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/identity"
)

// Page sizes of the property listing.
const (
	defaultListLimit = 50
	maxListLimit     = 1000
)

// tenantHandle is a tenant API handler, called once the tenant is verified and
// known to live in the realm that was called.
type tenantHandle func(w http.ResponseWriter, r *http.Request, ps httprouter.Params, auth *identity.Identity)

// tenantAPI authenticates a tenant API call: a Connect JWT (context-qsh
// allowed, since the app's own frontend mints those) for a tenant pinned to
// the realm called. Every answer names the realm in X-Realm.
func (s *Server) tenantAPI(h tenantHandle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if called, err := s.calledRealm(r); err == nil {
			w.Header().Set("X-Realm", called.Key)
		}
		auth, err := s.authenticate(r, tenantAPIPolicy)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r, ps, auth)
	}
}

// propertyKey validates the key taken from the path.
//
// A key ending in "/" is refused: the qsh's canonical path drops one trailing
// "/", so a token signed for …/properties/ts would also open …/properties/ts/,
// a second key. Refusing every such key keeps the rule that two requests with
// the same canonical request name the same resource.
func propertyKey(ps httprouter.Params) (string, error) {
	key := strings.TrimPrefix(ps.ByName("key"), "/")
	if err := realmhook.CheckPropertyKey(key); err != nil {
		return "", err
	}
	if strings.HasSuffix(key, "/") {
		return "", realmhook.Errorf(realmhook.EINVALID, "property key %q ends in \"/\"; a signed request cannot tell it from the key without it", truncateKey(key))
	}
	if hasOddSegment(key) {
		return "", realmhook.Errorf(realmhook.EINVALID, "property key %q has an empty, \".\" or \"..\" segment; proxies that normalise paths would send it as another key", truncateKey(key))
	}
	return key, nil
}

// hasOddSegment reports whether a "/"-separated key has a segment that
// intermediaries rewrite (RFC 3986 dot segments, merged slashes), so that the
// signed path and the one that arrives could name different keys.
func hasOddSegment(key string) bool {
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// truncateKey bounds a refused key quoted back in an error message.
func truncateKey(key string) string {
	const limit = 64
	if len(key) > limit {
		return key[:limit] + "…"
	}
	return key
}

type propertyView struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

func (s *Server) getProperty(w http.ResponseWriter, r *http.Request, ps httprouter.Params, auth *identity.Identity) {
	key, err := propertyKey(ps)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	value, err := auth.Home.Store.GetProperty(r.Context(), auth.Tenant.ClientKey, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, propertyView{Key: key, Value: value})
}

func (s *Server) putProperty(w http.ResponseWriter, r *http.Request, ps httprouter.Params, auth *identity.Identity) {
	key, err := propertyKey(ps)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	value, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := realmhook.CheckPropertyValue(value); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkJSONDepth(value, "property value"); err != nil {
		s.writeError(w, r, err)
		return
	}
	created, err := auth.Home.Store.PutProperty(r.Context(), auth.Tenant.ClientKey, key, value)
	if err != nil {
		s.writeError(w, r, s.movedSince(r, auth, err))
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, propertyView{Key: key, Value: value})
}

func (s *Server) deleteProperty(w http.ResponseWriter, r *http.Request, ps httprouter.Params, auth *identity.Identity) {
	key, err := propertyKey(ps)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := auth.Home.Store.DeleteProperty(r.Context(), auth.Tenant.ClientKey, key); err != nil {
		s.writeError(w, r, s.movedSince(r, auth, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// movedSince turns a write's "no active tenant" into the 421 the caller
// would have got a moment later: a commit can land between authentication
// and the write. Any other error is returned as is.
func (s *Server) movedSince(r *http.Request, auth *identity.Identity, err error) error {
	if realmhook.ErrorCode(err) != realmhook.ENOTFOUND {
		return err
	}
	t, gerr := auth.Home.Store.GetTenant(r.Context(), auth.Tenant.ClientKey)
	switch {
	case gerr != nil || t.State == realmhook.TenantActive:
		return err
	case t.MovedAway():
		return s.ident.Misdirected(auth.Called, t.MovedTo, t.ClientKey)
	}
	if home, _, lerr := s.opts.Realms.Locate(r.Context(), t.ClientKey); lerr == nil && home.Key != auth.Called.Key {
		return s.ident.Misdirected(auth.Called, home.Key, t.ClientKey)
	}
	return err
}

// listProperties pages through the tenant's properties by key. The cursor is
// the last key of the previous page, encoded so it is opaque to callers.
func (s *Server) listProperties(w http.ResponseWriter, r *http.Request, _ httprouter.Params, auth *identity.Identity) {
	q, err := singleValued(r, "limit", "cursor", "prefix")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			s.writeError(w, r, realmhook.Errorf(realmhook.EINVALID, "limit must be a whole number from 1 to %d", maxListLimit))
			return
		}
		limit = n
	}
	var after string
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			s.writeError(w, r, realmhook.Errorf(realmhook.EINVALID, "cursor is not one this API returned"))
			return
		}
		if len(b) > realmhook.MaxPropertyKeyBytes {
			s.writeError(w, r, realmhook.Errorf(realmhook.EINVALID, "cursor is not one this API returned"))
			return
		}
		after = string(b)
	}
	// A prefix is held to the rules of the keys it matches: one that is not
	// UTF-8 would be refused by one backend and matched by another.
	prefix := q.Get("prefix")
	switch {
	case len(prefix) > realmhook.MaxPropertyKeyBytes:
		s.writeError(w, r, realmhook.Errorf(realmhook.EINVALID, "prefix is %d bytes; a key is at most %d", len(prefix), realmhook.MaxPropertyKeyBytes))
		return
	case !utf8.ValidString(prefix) || !utf8.ValidString(after):
		s.writeError(w, r, realmhook.Errorf(realmhook.EINVALID, "prefix and cursor must be UTF-8"))
		return
	}
	props, err := auth.Home.Store.ListProperties(r.Context(), auth.Tenant.ClientKey, prefix, after, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]propertyView, 0, len(props))
	for _, p := range props {
		out = append(out, propertyView{Key: p.Key, Value: p.Value})
	}
	body := map[string]any{"properties": out}
	if len(props) == limit {
		body["nextCursor"] = base64.RawURLEncoding.EncodeToString([]byte(props[len(props)-1].Key))
	}
	writeJSON(w, http.StatusOK, body)
}
