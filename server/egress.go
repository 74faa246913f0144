package server

import (
	"log/slog"
	"net/http"

	"github.com/realmhook/realmhook/egress"
)

// wireEgress builds, with gateway.egressListen, the app's door to the
// product's REST API; its refusals read as every realmhook route's.
func (s *Server) wireEgress(appKey string) error {
	g := s.cfg.Gateway
	if g == nil || g.EgressListen == "" {
		return nil
	}
	h, err := egress.New(egress.Options{
		Secret:  []byte(g.IdentitySecret),
		Leeway:  s.cfg.JWT.Leeway,
		Realms:  s.registry,
		AppKey:  appKey,
		Timeout: g.Timeout,
		Error:   s.hooks.WriteError,
		Log:     func(*http.Request) *slog.Logger { return s.logger.With("component", "egress") },
	})
	if err != nil {
		return err
	}
	s.egress = h
	return nil
}

// EgressHandler is the app's door to the product's REST API, to serve on
// gateway.egressListen (never a public address); nil without one.
func (s *Server) EgressHandler() http.Handler {
	if s.egress == nil {
		return nil
	}
	return s.egress
}
