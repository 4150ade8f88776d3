package admission

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the webhook's Prometheus metrics, on a registry of their own.
type metrics struct {
	reg        *prometheus.Registry
	decisions  *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	fetches    *prometheus.CounterVec
	fetchTime  prometheus.Histogram
	audit      *prometheus.CounterVec
	unverified prometheus.Gauge
	cached     prometheus.GaugeFunc
}

func newMetrics(cacheSize func() int) *metrics {
	reg := prometheus.NewRegistry()
	// The Go and process collectors of package prometheus itself: package
	// collectors would link database/sql (its DBStats collector), which the
	// webhook's dependency budget refuses.
	//lint:ignore SA1019 collectors.NewGoCollector is the same collector, in a package that links database/sql
	goCollector := prometheus.NewGoCollector()
	//lint:ignore SA1019 as above
	processCollector := prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{})
	reg.MustRegister(goCollector, processCollector)
	m := &metrics{
		reg: reg,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_admission_decisions_total",
			Help: "Admission reviews answered, by webhook (validate, mutate) and outcome (allow, deny, warn, audit, break_glass, skip, error).",
		}, []string{"webhook", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "signet_admission_decision_duration_seconds",
			Help:    "Time to answer an admission review, by webhook.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"webhook"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_admission_trust_fetches_total",
			Help: "Updates of a repository's trust data from the trust server, by result (ok, error).",
		}, []string{"result"}),
		fetchTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "signet_admission_trust_fetch_duration_seconds",
			Help:    "Time to update and verify a repository's trust data.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		audit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_admission_audit_records_total",
			Help: "Records posted to the audit log, by result (appended, error, dropped, unconfigured).",
		}, []string{"result"}),
		unverified: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "signet_admission_unverified_running",
			Help: "Admitted images that no longer verify (signature revoked or expired since admission), as of the last revalidation.",
		}),
	}
	m.cached = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "signet_admission_cached_repositories",
		Help: "Repositories whose verified trust data is cached.",
	}, func() float64 { return float64(cacheSize()) })
	reg.MustRegister(m.decisions, m.duration, m.fetches, m.fetchTime, m.audit, m.unverified, m.cached)
	return m
}

func (m *metrics) trustFetched(err error, d time.Duration) {
	r := "ok"
	if err != nil {
		r = "error"
	}
	m.fetches.WithLabelValues(r).Inc()
	m.fetchTime.Observe(d.Seconds())
}
