package locate

import (
	"bytes"
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect"

	"github.com/realmhook/realmhook"
	peerv1 "github.com/realmhook/realmhook/gen/realmhook/peer/v1"
	"github.com/realmhook/realmhook/gen/realmhook/peer/v1/peerv1connect"
	"github.com/realmhook/realmhook/identity"
	"github.com/realmhook/realmhook/internalauth"
	"github.com/realmhook/realmhook/realms"
)

// Server answers other processes' lookups and forwarded calls for the
// realms this process serves. Each call is for the realm its internal token
// names (internalauth.CalledRealm), so the Verifier's interceptor must run
// before it.
type Server struct {
	Realms *realms.Registry
	// Ident verifies the tenant's token of a call, as the public routes do.
	Ident identity.Authenticator
	// Public is this process's public handler, which runs forwarded calls.
	Public http.Handler
}

var _ peerv1connect.LocateServiceHandler = (*Server)(nil)

// Handler returns the service's path and handler.
func (s *Server) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	return peerv1connect.NewLocateServiceHandler(s, opts...)
}

// locatePolicy verifies a tenant's token the way the migration hooks do:
// the record read fresh, on any realm's base URL.
var locatePolicy = identity.Policy{Kind: identity.ConnectHS256, Realm: identity.AnyRealm}

// Locate says whether the called realm holds the tenant.
func (s *Server) Locate(ctx context.Context, req *connect.Request[peerv1.LocateRequest]) (*connect.Response[peerv1.LocateResponse], error) {
	realm, err := s.calledRealm(ctx)
	if err != nil {
		return nil, err
	}
	ctx = identity.LocalOnly(ctx)
	clientKey := req.Msg.GetClientKey()
	if req.Msg.GetCall() == nil {
		home, _, err := s.Realms.Locate(ctx, clientKey)
		switch {
		case realmhook.ErrorCode(err) == realmhook.ENOTFOUND:
			return connect.NewResponse(&peerv1.LocateResponse{}), nil
		case err != nil:
			return nil, connectError(err)
		}
		return connect.NewResponse(&peerv1.LocateResponse{Held: home.Key == realm.Key}), nil
	}
	r, err := requestOf(ctx, realm, req.Msg.GetCall())
	if err != nil {
		return nil, err
	}
	p := locatePolicy
	p.AllowContextQSH = req.Msg.GetAllowContextQsh()
	id, err := s.Ident.Authenticate(r, realm, p)
	switch code := realmhook.ErrorCode(err); {
	case code == realmhook.EUNAUTHORIZED:
		// Not held here, or not this tenant's token: one answer for both.
		return connect.NewResponse(&peerv1.LocateResponse{}), nil
	case err != nil:
		return nil, connectError(err)
	}
	held := id.Home != nil && id.Home.Key == realm.Key && id.ClientKey == clientKey
	return connect.NewResponse(&peerv1.LocateResponse{Held: held}), nil
}

// Forward runs the call on the called realm's base URL and returns the
// answer as the public handler gave it.
func (s *Server) Forward(ctx context.Context, req *connect.Request[peerv1.ForwardRequest]) (*connect.Response[peerv1.ForwardResponse], error) {
	realm, err := s.calledRealm(ctx)
	if err != nil {
		return nil, err
	}
	r, err := requestOf(identity.LocalOnly(ctx), realm, req.Msg.GetCall())
	if err != nil {
		return nil, err
	}
	rec := &recorder{header: http.Header{}}
	s.Public.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	resp := &peerv1.ForwardResponse{Status: int32(rec.status), Body: rec.body.Bytes()}
	for name, vs := range rec.header {
		for _, v := range vs {
			resp.Headers = append(resp.Headers, &peerv1.Header{Name: name, Value: v})
		}
	}
	return connect.NewResponse(resp), nil
}

func (s *Server) calledRealm(ctx context.Context) (*realms.Realm, error) {
	key, ok := internalauth.CalledRealm(ctx)
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, internalauth.ErrRefused)
	}
	realm, ok := s.Realms.Get(key)
	if !ok || realm.Store == nil {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("realm "+key+" is not served here"))
	}
	return realm, nil
}

// requestOf is call as a request to realm's base URL.
func requestOf(ctx context.Context, realm *realms.Realm, call *peerv1.HTTPCall) (*http.Request, error) {
	if call == nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("call is required"))
	}
	u := realm.BaseURL + call.GetPath()
	if call.GetRawQuery() != "" {
		u += "?" + call.GetRawQuery()
	}
	r, err := http.NewRequestWithContext(ctx, call.GetMethod(), u, bytes.NewReader(call.GetBody()))
	if err != nil || call.GetPath() == "" || call.GetPath()[0] != '/' {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("call: not a request below the realm's base URL"))
	}
	for _, h := range call.GetHeaders() {
		r.Header.Add(h.GetName(), h.GetValue())
	}
	r.RemoteAddr = "internal"
	return r, nil
}

// connectError is a lookup that failed here: Unavailable for a database
// that did not answer (the caller answers 503), Internal otherwise.
func connectError(err error) error {
	if realmhook.ErrorCode(err) == realmhook.EUNAVAILABLE {
		return connect.NewError(connect.CodeUnavailable, errors.New(realmhook.ErrorMessage(err)))
	}
	return connect.NewError(connect.CodeInternal, errors.New("lookup failed"))
}

// recorder keeps a forwarded call's answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
