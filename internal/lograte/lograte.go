// Package lograte keeps a failure that repeats on every request from
// flooding the log: while a dependency is down (the cluster bus during a
// NATS outage) each request that falls back would log the same warning,
// two per WebSocket opened and closed, one per send, search or sign-in.
// A Handler passes the first line of each message, then at most one per
// Every, which carries the count of the lines of that message left out
// since (FailuresNotLogged), as hub/natsbus does for its connection
// attempts.
package lograte

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is how often a repeated message is logged again.
const DefaultEvery = 30 * time.Second

// FailuresNotLogged is the attribute of a line logged after others of its
// message were left out: how many.
const FailuresNotLogged = "failures_not_logged"

// Options configure a Handler.
type Options struct {
	// Every is how often a message is logged again; it defaults to
	// DefaultEvery.
	Every time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
}

// Handler is a slog.Handler that rate-limits the lines of each message
// (a record's Message, whatever its attributes) it hands to the handler
// it wraps. Handlers made from it by WithAttrs and WithGroup share its
// counts.
type Handler struct {
	next  slog.Handler
	state *state
}

// state is what a Handler and those made from it share.
type state struct {
	every time.Duration
	now   func() time.Time
	mu    sync.Mutex
	runs  map[string]*run // by message: a fixed set in the code logging
}

// run is one message's last line logged and the lines left out since.
type run struct {
	loggedAt time.Time
	skipped  int
}

// NewHandler returns a Handler over next.
func NewHandler(next slog.Handler, o Options) *Handler {
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{next: next, state: &state{every: o.Every, now: o.Now, runs: map[string]*run{}}}
}

// Logger returns a logger writing through l's handler, each of its
// messages at most once per DefaultEvery (see Handler).
func Logger(l *slog.Logger) *slog.Logger {
	return slog.New(NewHandler(l.Handler(), Options{}))
}

// Enabled reports whether the wrapped handler takes level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle passes r on when its message was not logged within Every, with
// FailuresNotLogged when some of it were left out meanwhile; otherwise it
// counts r and drops it.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	skipped, ok := h.state.allow(r.Message)
	if !ok {
		return nil
	}
	if skipped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int(FailuresNotLogged, skipped))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a Handler over next.WithAttrs(attrs), sharing h's counts.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs), state: h.state}
}

// WithGroup returns a Handler over next.WithGroup(name), sharing h's counts.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), state: h.state}
}

// allow records a line of msg and reports whether to log it, with the
// number of its lines left out since the last one logged.
func (s *state) allow(msg string) (skipped int, ok bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.runs[msg]
	if r == nil {
		s.runs[msg] = &run{loggedAt: now}
		return 0, true
	}
	if now.Sub(r.loggedAt) < s.every {
		r.skipped++
		return 0, false
	}
	skipped, r.loggedAt, r.skipped = r.skipped, now, 0
	return skipped, true
}
