package server

import (
	"fmt"
	"strings"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/hooks"
	"github.com/realmhook/realmhook/identitytoken"
	"github.com/realmhook/realmhook/outbox"
)

// wireGatewayEvents builds, with a gateway configured, the delivery of every
// served realm's outbox to that realm's upstream (gateway.eventsPath).
func (s *Server) wireGatewayEvents(metrics *hooks.Metrics) error {
	g := s.cfg.Gateway
	if g == nil {
		return nil
	}
	key, err := identitytoken.NewKey(g.IdentitySecret)
	if err != nil {
		return fmt.Errorf("gateway.identitySecret: %w", err)
	}
	var targets []outbox.Target
	for _, r := range s.registry.Served() {
		if up := s.cfg.Upstream(r.Key); up != "" {
			targets = append(targets, outbox.Target{Realm: r.Key, Store: r.Store, URL: strings.TrimSuffix(up, "/") + g.EventsPath})
		}
	}
	s.outbox, err = outbox.New(outbox.Options{
		Targets: targets,
		// The event's identity is its tenant in the realm whose app gets it;
		// the shared secret never leaves realmhook.
		Identity: func(e realmhook.Event, now time.Time) (string, error) {
			return key.Mint(identitytoken.Identity{ClientKey: e.ClientKey, Realm: e.Realm}, now)
		},
		IdentityHeader: identitytoken.Header,
		Timeout:        g.Timeout,
		Registerer:     metrics.Registry,
		Logger:         s.logger,
	})
	return err
}
