package transport

import (
	"io/fs"
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/transport/api"
	"chatd/transport/auth"
	"chatd/transport/httperr"
	"chatd/transport/internal/reqtimeout"
	"chatd/transport/limits"
)

// DefaultBodyLimit caps request bodies (1 MiB).
const DefaultBodyLimit = 1 << 20

// RouterOptions are the parts NewRouter composes. Auth, Accounts,
// Conversations, Models and Health are required.
type RouterOptions struct {
	// Logger receives one line per request; it defaults to slog.Default().
	Logger *slog.Logger

	Auth          *auth.Authenticator
	Accounts      *auth.Accounts
	Conversations *api.Conversations
	Models        *api.Models
	Health        *api.Health

	// TrustedProxies are the addresses or CIDRs whose X-Forwarded-For /
	// X-Real-IP headers are believed (gin's ClientIP). Empty: none, the
	// client IP is the connection's peer. The first request forwarded by a
	// loopback or private address not listed here is logged as a warning
	// (a proxy the operator forgot to list).
	TrustedProxies []string
	// BodyLimit caps request bodies in bytes; it defaults to DefaultBodyLimit.
	BodyLimit int64
	// BodyReadTimeout is how long a request body may take to arrive; it
	// defaults to DefaultBodyReadTimeout. A slower body fails and its
	// connection is closed.
	BodyReadTimeout time.Duration
	// ResponseWriteTimeout is how long each piece (64 KiB) of a REST
	// response may take to reach the connection; it defaults to
	// DefaultResponseWriteTimeout. A client that stops reading has its
	// connection closed, and the memory its answer held is freed. The live
	// channel's streams (WebSocket, SSE) have their own write timeout while
	// they run; what their routes leave to net/http once the handler
	// returns (an error answer, the end of a stream) has this one.
	ResponseWriteTimeout time.Duration
	// Static is the built web client (index.html, assets/...), served with
	// package frontend's single-page-app rules. Nil serves the client built
	// into the binary (-tags embedui), or a page explaining how to build it.
	Static fs.FS
	// Metrics configures GET /metrics.
	Metrics MetricsOptions
	// Register, when set, adds routes (the WebSocket and SSE routes).
	Register func(Routes)
	// Requests bounds each user's requests to the REST routes of
	// Conversations and Models running at once on this instance, the
	// others waiting their turn (auth.Authenticator.MiddlewareTurns); it
	// defaults to limits.NewRequests's defaults. The live channel's routes
	// (Register's), which hold their request for a stream, and the
	// account routes are not counted.
	Requests *limits.Requests
}

// Routes are where Register adds routes. Route parameters must use the
// names already in the tree: a conversation id is ":id"
// (/api/conversations/:id/...).
type Routes struct {
	// Engine is the root: /ws goes here.
	Engine *gin.Engine
	// API is the /api group with no authentication. Its answers, and
	// Authed's, carry Cache-Control: no-store (noStore) unless the handler
	// sets another.
	API *gin.RouterGroup
	// Authed is the /api group behind the authentication middleware
	// (auth.IdentityFrom gives the user).
	Authed *gin.RouterGroup
}

// NewRouter returns the server's handler. It fails only on a malformed
// trusted proxy or metrics setting.
func NewRouter(opts RouterOptions) (*gin.Engine, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BodyLimit <= 0 {
		opts.BodyLimit = DefaultBodyLimit
	}
	if opts.BodyReadTimeout <= 0 {
		opts.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if opts.ResponseWriteTimeout <= 0 {
		opts.ResponseWriteTimeout = DefaultResponseWriteTimeout
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.ContextWithFallback = true
	if err := r.SetTrustedProxies(opts.TrustedProxies); err != nil {
		return nil, err
	}
	metrics, err := newHTTPMetrics(opts.Metrics)
	if err != nil {
		return nil, err
	}
	r.Use(headAsGet(r), reqtimeout.Start, requestLog(opts.Logger), metrics.observe, recovery(opts.Logger), untrustedProxy(opts.Logger, opts.TrustedProxies), wellFormedQuery, httperr.LimitBody(opts.BodyLimit),
		bodyDeadline(opts.BodyReadTimeout), writeDeadline(opts.ResponseWriteTimeout))

	opts.Health.Routes(r)
	r.GET("/metrics", metrics.serve)
	apiGroup := r.Group("/api", noStore)
	opts.Health.Routes(apiGroup)
	opts.Accounts.Routes(apiGroup)
	if opts.Requests == nil {
		opts.Requests = limits.NewRequests(limits.RequestOptions{})
	}
	rest := apiGroup.Group("", opts.Auth.MiddlewareTurns(opts.Requests))
	opts.Conversations.Routes(rest)
	opts.Models.Routes(rest)
	authed := apiGroup.Group("", opts.Auth.Middleware())
	if opts.Register != nil {
		opts.Register(Routes{Engine: r, API: apiGroup, Authed: authed})
	}

	r.NoMethod(func(c *gin.Context) {
		allowWithHead(c)
		httperr.Abort(c, 405, httperr.CodeMethodNotAllowed, "method not allowed on this route")
	})
	r.NoRoute(webClient(opts.Static))
	return r, nil
}
