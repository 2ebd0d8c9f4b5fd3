package api

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/transport/httperr"
)

// DefaultPingTimeout bounds the database ping behind /readyz.
const DefaultPingTimeout = 2 * time.Second

// Pinger is the store's health check.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Health serves /healthz (the process runs) and /readyz (the database
// answers and the server is not shutting down).
type Health struct {
	db          Pinger
	pingTimeout time.Duration
	draining    atomic.Bool
}

// NewHealth returns the health routes; pingTimeout defaults to
// DefaultPingTimeout.
func NewHealth(db Pinger, pingTimeout time.Duration) *Health {
	if pingTimeout <= 0 {
		pingTimeout = DefaultPingTimeout
	}
	return &Health{db: db, pingTimeout: pingTimeout}
}

// SetDraining makes /readyz answer 503 from now on, so a load balancer
// stops sending new requests while the server shuts down.
func (h *Health) SetDraining() { h.draining.Store(true) }

// Routes registers GET and HEAD /healthz and /readyz on r (the engine and
// the /api group both get them; load balancers often probe with HEAD).
func (h *Health) Routes(r gin.IRouter) {
	r.Match([]string{http.MethodGet, http.MethodHead}, "/healthz", h.healthz)
	r.Match([]string{http.MethodGet, http.MethodHead}, "/readyz", h.readyz)
}

func (h *Health) healthz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (h *Health) readyz(c *gin.Context) {
	if h.draining.Load() {
		httperr.AbortError(c, httperr.Unavailable("not ready: shutting down", nil))
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), h.pingTimeout)
	defer cancel()
	if err := h.db.Ping(ctx); err != nil {
		httperr.AbortError(c, httperr.Unavailable("not ready: the database does not answer", fmt.Errorf("ping database: %w", err)))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}
