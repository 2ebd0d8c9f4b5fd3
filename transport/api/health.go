package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/persistence"
	"chatd/transport/httperr"
)

// Defaults of HealthOptions.
const (
	DefaultPingTimeout   = 2 * time.Second
	DefaultProbeInterval = 5 * time.Second
)

// Pinger is the store's health check.
type Pinger interface {
	Ping(ctx context.Context) error
}

// WriteProber is a store that can make a tiny test write
// (persistence.Store.ProbeWrite).
type WriteProber interface {
	ProbeWrite(ctx context.Context) error
}

// WriteStatus reports whether background writes are failing: the batching
// writer's Err, non-nil while the store refuses its writes.
type WriteStatus interface {
	Err() error
}

// HealthOptions configure the health routes. Zero fields take the
// documented defaults.
type HealthOptions struct {
	// Store is pinged by /readyz; if it is a WriteProber, /readyz also
	// checks that it can write (at most once per ProbeInterval). Required.
	Store Pinger
	// Writes, when set, turns /readyz 503 while its Err is not nil.
	Writes WriteStatus
	// PingTimeout bounds the ping and the probe write; it defaults to DefaultPingTimeout.
	PingTimeout time.Duration
	// ProbeInterval is how often /readyz makes a probe write; the result is
	// reused in between, so polling /readyz never writes more often. It
	// defaults to DefaultProbeInterval.
	ProbeInterval time.Duration
	// Logger receives one line when readiness is lost and one when it is
	// back; it defaults to slog.Default().
	Logger *slog.Logger
}

// Health serves /healthz (the process runs) and /readyz (the database
// answers and accepts writes, the cluster bus if any is usable, and the
// server is not shutting down).
type Health struct {
	opts     HealthOptions
	prober   WriteProber // nil when the store cannot probe
	draining atomic.Bool

	mu       sync.Mutex
	probedAt time.Time
	probeErr error
	probing  chan struct{} // closed when the probe write in flight ends; nil when none runs
	failing  string        // the reason last logged; "" while ready

	bus func(ctx context.Context) error // the cluster bus's health, or nil
}

// SetBusCheck makes /readyz answer 503 while the cluster bus is unusable
// (check's error is logged, not answered). Call it before serving.
func (h *Health) SetBusCheck(check func(ctx context.Context) error) { h.bus = check }

// NewHealth returns the health routes over db; pingTimeout defaults to
// DefaultPingTimeout. See NewHealthWith for the other options.
func NewHealth(db Pinger, pingTimeout time.Duration) *Health {
	return NewHealthWith(HealthOptions{Store: db, PingTimeout: pingTimeout})
}

// NewHealthWith returns the health routes.
func NewHealthWith(opts HealthOptions) *Health {
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = DefaultPingTimeout
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = DefaultProbeInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &Health{opts: opts}
	h.prober, _ = opts.Store.(WriteProber)
	return h
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
	ctx, cancel := context.WithTimeout(c.Request.Context(), h.opts.PingTimeout)
	defer cancel()
	reason, err := h.check(ctx)
	if err == nil && h.bus != nil {
		if err = h.bus(ctx); err != nil {
			reason = reasonBus
		}
	}
	if err != nil {
		if c.Request.Context().Err() == nil { // a caller that left says nothing of the server
			h.report(reason, err)
		}
		// The reason only: anyone who reaches the server may read the
		// answer, and the error behind it may name internal addresses;
		// report logged it whole.
		httperr.AbortError(c, httperr.Unavailable("not ready: "+reason, err))
		return
	}
	h.report("", nil)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// reasonBus is why the server is not ready while the cluster bus is
// unusable.
const reasonBus = "the cluster bus is unavailable"

// reasonLeaseLost is why the server is not ready once the store lost its
// single-process lease (persistence.ErrLeaseLost).
const reasonLeaseLost = "another chatd took this database's single-process lease: stop one of the two and restart this one, or run them as a cluster"

// reasonLeaseLapsed is why the server is not ready while its
// single-process lease has expired unrenewed and nobody is known to have
// taken it (persistence.ErrLeaseLapsed): it is ready again once a renewal
// gets through and finds the lease still its own.
const reasonLeaseLapsed = "this chatd's single-process lease on the database expired unrenewed (the database did not answer its renewals); ready again once a renewal gets through, unless another chatd took the lease meanwhile"

// check returns why the server is not ready, or "" and nil.
func (h *Health) check(ctx context.Context) (string, error) {
	if err := h.opts.Store.Ping(ctx); err != nil {
		switch {
		case errors.Is(err, persistence.ErrLeaseLapsed):
			return reasonLeaseLapsed, fmt.Errorf("ping database: %w", err)
		case errors.Is(err, persistence.ErrLeaseLost):
			return reasonLeaseLost, fmt.Errorf("ping database: %w", err)
		}
		return "the database does not answer", fmt.Errorf("ping database: %w", err)
	}
	if h.opts.Writes != nil {
		if err := h.opts.Writes.Err(); err != nil {
			return "the database does not accept writes", fmt.Errorf("write answers: %w", err)
		}
	}
	if err := h.probe(ctx); err != nil {
		if errors.Is(err, persistence.ErrCorrupt) {
			return "the database file is corrupted", err
		}
		return "the database does not accept writes", err
	}
	return "", nil
}

// probe returns the result of the last probe write if it is less than
// ProbeInterval old; otherwise it starts one, unless one is in flight, and
// waits for it or for ctx. The write runs detached from its callers, on a
// context of its own bounded by PingTimeout: a caller that hangs up (or
// times out) gets its own error, but neither fails the write nor has its
// cancellation cached for everyone else (a load balancer's next /readyz).
// Concurrent callers share the one write in flight.
func (h *Health) probe(ctx context.Context) error {
	if h.prober == nil {
		return nil
	}
	h.mu.Lock()
	if h.probing == nil && !h.probedAt.IsZero() && time.Since(h.probedAt) < h.opts.ProbeInterval {
		err := h.probeErr
		h.mu.Unlock()
		return err
	}
	done := h.probing
	if done == nil {
		done = make(chan struct{})
		h.probing = done
		go h.probeWrite(context.WithoutCancel(ctx), done)
	}
	h.mu.Unlock()
	select {
	case <-done:
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.probeErr
	case <-ctx.Done():
		return fmt.Errorf("wait for the probe write: %w", ctx.Err())
	}
}

// probeWrite makes one probe write within PingTimeout, records its result
// and closes done. It is the only writer of probedAt and probeErr.
func (h *Health) probeWrite(ctx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.PingTimeout)
	defer cancel()
	err := h.prober.ProbeWrite(ctx)
	h.mu.Lock()
	h.probing, h.probedAt, h.probeErr = nil, time.Now(), err
	h.mu.Unlock()
	close(done)
}

// report logs one line when readiness is lost (or its reason changes) and
// one when it is back.
func (h *Health) report(reason string, err error) {
	h.mu.Lock()
	prev := h.failing
	h.failing = reason
	h.mu.Unlock()
	switch {
	case reason == prev:
	case reason == "":
		h.opts.Logger.Info("ready again: the database answers and accepts writes, and the cluster bus (if any) is usable")
	case errors.Is(err, persistence.ErrCorrupt):
		h.opts.Logger.Error("not ready: the database file is corrupted (malformed); stop the server and restore it from a backup",
			slog.String("err", err.Error()))
	default:
		h.opts.Logger.Error("not ready: "+reason, slog.String("err", err.Error()))
	}
}
