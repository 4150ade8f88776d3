package server

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's Prometheus metrics, on a registry of their own.
type Metrics struct {
	reg       *prometheus.Registry
	duration  *prometheus.HistogramVec
	publishes prometheus.Counter
	rejects   *prometheus.CounterVec
	resigned  prometheus.Counter
	signer    *prometheus.HistogramVec
	soonest   *prometheus.GaugeVec
	pruned    prometheus.Counter
	limits    *prometheus.CounterVec
	byOp      sync.Map // operation → prometheus.Observer, resolved once
}

// NewMetrics makes the metrics on reg (a new registry when nil).
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &Metrics{
		reg: reg,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "signet_server_http_request_duration_seconds",
			Help:    "Time to answer a Notary API request, by operation.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
		}, []string{"operation"}),
		publishes: prometheus.NewCounter(prometheus.CounterOpts{Name: "signet_server_publishes_total", Help: "Accepted metadata updates."}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_server_rejected_updates_total", Help: "Refused metadata updates, by reason.",
		}, []string{"reason"}),
		resigned: prometheus.NewCounter(prometheus.CounterOpts{Name: "signet_server_resigned_total", Help: "Timestamps (and snapshots) re-signed before expiry."}),
		soonest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "signet_server_soonest_expiry_seconds",
			Help: "Unix time of the soonest expiry among the current metadata of a role across all repositories (absent when no repository has the role); alert on it minus time().",
		}, []string{"role"}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{Name: "signet_server_pruned_files_total", Help: "Superseded metadata versions removed by the retention policy."}),
		limits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_server_limited_requests_total",
			Help: "Requests turned away at a resource limit (new_repository_keys: 429; upload_memory: 503), by limit.",
		}, []string{"limit"}),
	}
	m.signer = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "signet_server_signer_duration_seconds",
		Help:    "Time of key custody operations (create, keys, signer, sign), embedded or remote.",
		Buckets: []float64{.00005, .0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
	}, []string{"operation"})
	reg.MustRegister(m.signer)
	reg.MustRegister(m.duration, m.publishes, m.rejects, m.resigned, m.soonest, m.pruned, m.limits)
	return m
}

// MustRegister adds collectors of other parts of the process (the audit
// log's) to the registry the metrics are served from.
func (m *Metrics) MustRegister(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

func (m *Metrics) observe(op string, d time.Duration) {
	if o, ok := m.byOp.Load(op); ok {
		o.(prometheus.Observer).Observe(d.Seconds())
		return
	}
	o := m.duration.WithLabelValues(op)
	m.byOp.Store(op, o)
	o.Observe(d.Seconds())
}

func (m *Metrics) rejected(reason string) { m.rejects.WithLabelValues(reason).Inc() }

func (m *Metrics) limited(limit string) { m.limits.WithLabelValues(limit).Inc() }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
