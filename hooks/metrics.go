package hooks

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

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

// Misdirected returns how many tenant calls on realm's base URL were
// answered 421 since the process started, whatever realm they belonged to:
// the admin API's misrouted-request count, read from the same series
// /metrics exports so that the two never disagree.
func (m *Metrics) Misdirected(realm string) int64 {
	ch := make(chan prometheus.Metric)
	go func() {
		m.misdirected.Collect(ch)
		close(ch)
	}()
	var total float64
	for metric := range ch {
		var d dto.Metric
		if metric.Write(&d) != nil {
			continue
		}
		for _, l := range d.GetLabel() {
			if l.GetName() == "realm" && l.GetValue() == realm {
				total += d.GetCounter().GetValue()
			}
		}
	}
	return int64(total)
}
