package outbox

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/realmhook/realmhook"
)

// metrics are the outbox's Prometheus series, by realm and event type.
type metrics struct {
	pending   *prometheus.GaugeVec
	delivered *prometheus.CounterVec
	failures  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, targets []Target) (*metrics, error) {
	labels := []string{"realm", "type"}
	m := &metrics{
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "realmhook_gateway_events_pending",
			Help: "Lifecycle events in the realm's outbox, not yet taken by the app.",
		}, labels),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realmhook_gateway_events_delivered_total",
			Help: "Lifecycle events the app answered 2xx to.",
		}, labels),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realmhook_gateway_event_failures_total",
			Help: "Deliveries of lifecycle events that failed (no 2xx) and will be retried.",
		}, labels),
	}
	// Every series exists from the start, so a rate over it has a zero to
	// start from.
	for _, t := range targets {
		for _, typ := range realmhook.EventTypes {
			m.pending.WithLabelValues(t.Realm, string(typ))
			m.delivered.WithLabelValues(t.Realm, string(typ))
			m.failures.WithLabelValues(t.Realm, string(typ))
		}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.pending, m.delivered, m.failures} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("outbox: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
