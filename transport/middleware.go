package transport

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/transport/auth"
	"chatd/transport/httperr"
)

// noStore marks every /api answer Cache-Control: no-store. They hold a
// user's conversations, messages, account and models: a browser must not
// keep them in its cache (on disk, for whoever uses a shared computer
// after the sign-out), nor a proxy in between. It is set before the
// handler runs, so a handler that sets its own (an event stream) replaces it.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Next()
}

// RequestIDHeader carries a request's id, from the client (or a proxy) or
// generated; the answer always echoes it.
const RequestIDHeader = "X-Request-ID"

const requestIDKey = "chatd.request_id"

// RequestID returns the id of c's request.
func RequestID(c *gin.Context) string { return c.GetString(requestIDKey) }

// requestLog assigns the request id and writes one JSON line per request
// once it is done: id, user (when known), method, route, path (never the
// query), status, duration, bytes, client IP and the error behind a 5xx.
// Headers and bodies are never logged. The successful answers of the
// probes (see probeRoutes) are logged at debug. A response aborted midway
// (panic(http.ErrAbortHandler), which recovery lets through) gets its line
// too, on its way out.
func requestLog(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		id := c.GetHeader(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		c.Set(requestIDKey, id)
		c.Header(RequestIDHeader, id)

		defer logRequest(logger, c, id, start)
		c.Next()
	}
}

// logRequest writes the line of c's request.
func logRequest(logger *slog.Logger, c *gin.Context, id string, start time.Time) {
	status, route := c.Writer.Status(), routeOf(c)
	attrs := []slog.Attr{
		slog.String("request_id", id),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.String("path", c.Request.URL.Path),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		slog.Int("bytes", max(c.Writer.Size(), 0)),
		slog.String("client_ip", c.ClientIP()),
	}
	if who, ok := auth.IdentityFrom(c); ok {
		attrs = append(attrs, slog.String("user_id", who.UserID))
	}
	if err := c.Errors.Last(); err != nil {
		attrs = append(attrs, slog.String("err", err.Err.Error()))
	}
	logger.LogAttrs(c.Request.Context(), levelOf(status, route), "http request", attrs...)
}

// probeRoutes are the routes that load balancers, uptime monitors and
// Prometheus poll, every few seconds each, for as long as the server runs.
// Their successful answers are logged at debug, not info: at info they
// would be most of the log (two load balancers probing /readyz every 2 s
// are 86,400 lines a day) and say nothing an operator acts on. Their
// failures keep their level, and chatd_http_requests_total counts them all.
var probeRoutes = map[string]bool{
	"/healthz": true, "/readyz": true, "/api/healthz": true, "/api/readyz": true, "/metrics": true,
}

// Route names of requests no route pattern matched, in logs and metrics.
const (
	// RouteStatic is a request the web client answered: its assets
	// (scripts, styles, KaTeX fonts) and its pages.
	RouteStatic = "static"
	// RouteUnmatched is any other request no route matched (a JSON 404 or 405).
	RouteUnmatched = "unmatched"
)

const routeKey = "chatd.route"

// routeOf is the matched route pattern, or a fixed word for the rest (so
// log and metric labels stay few).
func routeOf(c *gin.Context) string {
	if r := c.FullPath(); r != "" {
		return r
	}
	if r := c.GetString(routeKey); r != "" {
		return r
	}
	return RouteUnmatched
}

// levelOf is the level of the line of a request to route answered status.
func levelOf(status int, route string) slog.Level {
	switch {
	case status < 400 && probeRoutes[route]:
		return slog.LevelDebug
	case status == http.StatusServiceUnavailable:
		return slog.LevelWarn
	case status >= 500:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// validRequestID accepts 1..128 characters of letters, digits, '-', '_', '.'.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recovery turns a panic into a logged JSON 500 when nothing was sent
// yet; once the answer began, it aborts the response after logging, so
// the client sees it fail rather than a shorter answer ending as if whole.
// http.ErrAbortHandler keeps its meaning: abort the response.
func recovery(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			logger.Error("panic serving request",
				slog.String("request_id", RequestID(c)),
				slog.String("panic", fmt.Sprint(p)),
				slog.String("stack", string(debug.Stack())))
			started := c.Writer.Written()
			httperr.AbortError(c, httperr.Internal(fmt.Errorf("panic: %v", p)))
			if started {
				panic(http.ErrAbortHandler)
			}
		}()
		c.Next()
	}
}
