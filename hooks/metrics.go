package hooks

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/identity"
)

// Metrics are the Prometheus series the HTTP layer exports. Each Server gets
// its own registry so that tests and several servers in one process don't
// collide.
type Metrics struct {
	Registry      *prometheus.Registry
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	jwtRejections *prometheus.CounterVec
	misdirected   *prometheus.CounterVec
}

// NewMetrics registers realmhook's series and the Go runtime's.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realmhook_http_requests_total",
			Help: "HTTP requests by realm, route and status code.",
		}, []string{"realm", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "realmhook_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		jwtRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realmhook_jwt_rejections_total",
			Help: "Connect JWTs refused, by reason.",
		}, []string{"reason"}),
		misdirected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realmhook_misdirected_requests_total",
			Help: "Tenant calls answered 421 because the tenant lives in another realm.",
		}, []string{"realm", "expected_realm"}),
	}
	for _, reason := range append(connectjwt.Reasons(), identity.ReasonUnknownTenant) {
		m.jwtRejections.WithLabelValues(reason)
	}
	m.Registry.MustRegister(m.requests, m.duration, m.jwtRejections, m.misdirected,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
