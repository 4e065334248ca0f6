package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus series. Labels are routes, methods,
// status codes, KMIP operation names and result reasons: bounded sets, never
// an id, a project or a user.
type metrics struct {
	reg          *prometheus.Registry
	restRequests *prometheus.CounterVec
	restLatency  *prometheus.HistogramVec
	kmipItems    *prometheus.CounterVec
	kmipLatency  *prometheus.HistogramVec
	// Connection-level failures of the KMIP listener.
	kmipHandshakeFailures *prometheus.CounterVec
	kmipRefused           *prometheus.CounterVec
	kmipAcceptErrors      *prometheus.CounterVec
	// restSeries caches the series of each (route, method, code): resolving
	// labels through the vectors costs more than the rest of observing.
	restSeries sync.Map // restKey → restSeries
}

type restKey struct {
	route, method string
	code          int
}

type restSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// latencyBuckets span a cached payload read (tens of µs) to a slow fsync.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		restRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keywarden_rest_requests_total", Help: "Barbican REST requests answered, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		restLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keywarden_rest_request_duration_seconds", Help: "Time to answer a Barbican REST request.",
			Buckets: latencyBuckets,
		}, []string{"route", "method"}),
		kmipItems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keywarden_kmip_operations_total", Help: "KMIP batch items answered, by operation and result (success or the Result Reason).",
		}, []string{"operation", "result"}),
		kmipLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keywarden_kmip_operation_duration_seconds", Help: "Time to answer one KMIP batch item.",
			Buckets: latencyBuckets,
		}, []string{"operation"}),
	}
	m.kmipHandshakeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keywarden_kmip_tls_handshake_failures_total",
		Help: "KMIP connections whose TLS handshake failed, by reason: timeout, closed, certificate, revoked, protocol, or shed (closed unauthenticated to free a descriptor when accept ran out of them).",
	}, []string{"reason"})
	m.kmipRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keywarden_kmip_connections_refused_total",
		Help: "KMIP connections closed on accept because a cap was reached: max_connections or max_connections_per_source.",
	}, []string{"reason"})
	m.kmipAcceptErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keywarden_kmip_accept_errors_total",
		Help: "Failed accepts on the KMIP listener (it backs off and retries), by errno: EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED, timeout or other.",
	}, []string{"errno"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keywarden_build_info", Help: "The running version.",
	}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	m.reg.MustRegister(m.restRequests, m.restLatency, m.kmipItems, m.kmipLatency, build,
		m.kmipHandshakeFailures, m.kmipRefused, m.kmipAcceptErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeREST is barbican.Config.Observe.
func (m *metrics) observeREST(route, method string, status int, d time.Duration) {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions:
	default:
		method = "other" // a client's verb must not become a series
	}
	k := restKey{route, method, status}
	v, ok := m.restSeries.Load(k)
	if !ok {
		v, _ = m.restSeries.LoadOrStore(k, restSeries{
			count:   m.restRequests.WithLabelValues(route, method, strconv.Itoa(status)),
			latency: m.restLatency.WithLabelValues(route, method),
		})
	}
	s := v.(restSeries)
	s.count.Inc()
	s.latency.Observe(d.Seconds())
}

// observeKMIP is kmip.Config.Observe.
func (m *metrics) observeKMIP(op, failure string, d time.Duration) {
	if op == "" {
		op = "none"
	}
	result := failure
	if result == "" {
		result = "Success"
	}
	m.kmipItems.WithLabelValues(op, result).Inc()
	m.kmipLatency.WithLabelValues(op).Observe(d.Seconds())
}

// observeKMIPConn is kmip.Config.ObserveConn.
func (m *metrics) observeKMIPConn(event, reason string) {
	switch event {
	case "handshake_failed":
		m.kmipHandshakeFailures.WithLabelValues(reason).Inc()
	case "refused":
		m.kmipRefused.WithLabelValues(reason).Inc()
	case "accept_error":
		m.kmipAcceptErrors.WithLabelValues(reason).Inc()
	}
}

// kmipOpenConns publishes the KMIP listener's open connections.
func (m *metrics) kmipOpenConns(f func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "keywarden_kmip_connections_open", Help: "KMIP connections open (handshaking or served).",
	}, func() float64 { return float64(f()) }))
}

// serveMetrics answers GET /metrics on addr until the returned server is
// shut down. It is a listener of its own so that scraping needs no token
// and the API port shows nothing it does not need to.
func (m *metrics) serve(addr string, log *slog.Logger) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	return srv, ln.Addr().String(), nil
}
