package transport

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"chatd/transport/auth"
	"chatd/transport/httperr"
)

// MetricsOptions configure GET /metrics. A request is let in when its
// client IP (gin's ClientIP: see RouterOptions.TrustedProxies) is inside
// one of Allow, or when it carries "Authorization: Bearer <Token>".
// Everyone else gets 403.
type MetricsOptions struct {
	// Token, when set, lets in requests bearing it.
	Token string
	// Allow lists the networks let in without a token. Empty: none.
	Allow []netip.Prefix
	// Registerer receives the HTTP metrics; it defaults to
	// prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
	// Gatherer is what /metrics exposes; it defaults to
	// prometheus.DefaultGatherer (which includes Go and process metrics).
	Gatherer prometheus.Gatherer
}

// httpMetrics counts requests, their durations and those being answered,
// by route.
type httpMetrics struct {
	opts     MetricsOptions
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
	handler  gin.HandlerFunc
}

func newHTTPMetrics(opts MetricsOptions) (*httpMetrics, error) {
	if opts.Registerer == nil {
		opts.Registerer = prometheus.DefaultRegisterer
	}
	if opts.Gatherer == nil {
		opts.Gatherer = prometheus.DefaultGatherer
	}
	m := &httpMetrics{opts: opts}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatd_http_requests_total",
		Help: "HTTP requests answered, by method, route pattern and status code.",
	}, []string{"method", "route", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "chatd_http_request_duration_seconds",
		Help:    "Time to answer HTTP requests (for SSE streams: the stream's life; for /ws: the upgrade), by method and route pattern.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 60, 600},
	}, []string{"method", "route"})
	inFlight := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "chatd_http_requests_in_flight",
		Help: "HTTP requests being answered, by method and route pattern: on the SSE routes (/api/events, messages, regenerate, stream), the open event streams.",
	}, []string{"method", "route"})
	var err error
	if m.requests, err = register(opts.Registerer, requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(opts.Registerer, duration); err != nil {
		return nil, err
	}
	if m.inFlight, err = register(opts.Registerer, inFlight); err != nil {
		return nil, err
	}
	h := promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{})
	m.handler = gin.WrapH(h)
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same name (a second router in one process, as in tests).
func register[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	err := r.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// observe records each request once it is done, an aborted one included,
// and counts it in flight meanwhile. Only matched routes are counted in
// flight: the route of an unmatched request is known only once answered
// (RouteStatic or RouteUnmatched), and the gauge must move down under the
// label it moved up under.
func (m *httpMetrics) observe(c *gin.Context) {
	defer m.record(c, time.Now())
	if route := c.FullPath(); route != "" {
		g := m.inFlight.WithLabelValues(methodLabel(c.Request.Method), route)
		g.Inc()
		defer g.Dec()
	}
	c.Next()
}

// record counts c's request, which began at start.
func (m *httpMetrics) record(c *gin.Context, start time.Time) {
	route, method := routeOf(c), methodLabel(c.Request.Method)
	m.requests.WithLabelValues(method, route, strconv.Itoa(c.Writer.Status())).Inc()
	m.duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
}

// MethodOther is the method label of requests whose method is none of
// HTTP's standard ones: any token is a valid method, and a label per
// invented one would let anyone add series to /metrics without end.
const MethodOther = "other"

// methodLabel is method when it is a standard HTTP method, else MethodOther.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return MethodOther
}

// serve is GET /metrics.
func (m *httpMetrics) serve(c *gin.Context) {
	if e := httperr.RepeatedAuthorization(c.Request.Header); e != nil && m.opts.Token != "" {
		httperr.AbortError(c, e) // the token would be one of them
		return
	}
	if !m.allowed(c) {
		httperr.AbortError(c, httperr.Forbidden("metrics are only served to allowed addresses or with the metrics token"))
		return
	}
	m.handler(c)
}

func (m *httpMetrics) allowed(c *gin.Context) bool {
	if m.opts.Token != "" {
		got := auth.BearerToken(c.Request.Header)
		if subtle.ConstantTimeCompare([]byte(got), []byte(m.opts.Token)) == 1 {
			return true
		}
	}
	ip, err := netip.ParseAddr(c.ClientIP())
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range m.opts.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
