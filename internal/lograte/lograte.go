// Package lograte keeps a failure that repeats on every request from
// flooding the log: while a dependency is down (the cluster bus during a
// NATS outage) each request that falls back would log the same warning,
// two per WebSocket opened and closed, one per send, search or sign-in.
// A Handler passes the first line of each message and error, then at
// most one per Every, which carries the count of the lines of that
// message and error left out since (FailuresNotLogged), as hub/natsbus
// does for its connection attempts: another error is logged at once, and
// a failure after a quiet window starts afresh.
package lograte

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is how often a repeated message is logged again.
const DefaultEvery = 30 * time.Second

// DefaultMaxKeys is how many messages and errors a Handler keeps apart
// at most.
const DefaultMaxKeys = 64

// FailuresNotLogged is the attribute of a line logged after others of its
// message and error were left out: how many.
const FailuresNotLogged = "failures_not_logged"

// OtherErrors is the attribute (true) of a line standing for its message
// with any error: more distinct errors failed within Every than the
// Handler keeps apart (MaxKeys; texts naming a user or a key), and those
// past it are counted together per message, whatever their error.
const OtherErrors = "other_errors"

// FreshPerWindow is how many new errors of a message that spilled over
// (its OtherErrors line has a count to say) get lines of their own in
// each Every; the rest are counted under OtherErrors. A new kind of fault
// still shows at once unless that many new texts came first in the window.
const FreshPerWindow = 4

// ErrKey is the attribute whose text tells one failure of a message from
// another: the error the callers log with it.
const ErrKey = "err"

// Options configure a Handler.
type Options struct {
	// Every is how often a message and error is logged again; it
	// defaults to DefaultEvery.
	Every time.Duration
	// MaxKeys bounds the messages and errors counted apart; it defaults
	// to DefaultMaxKeys.
	MaxKeys int
	// Now defaults to time.Now.
	Now func() time.Time
	// By is the attribute whose text tells one run of a message from
	// another; it defaults to ErrKey. A caller whose errors' text changes
	// on every line through one fault (as natsbus's did: "no NATS
	// connection for 12.345s") names what failed instead (auth's
	// "limit"): the error text then never opens a run, and each line
	// logged shows its own; another error of the same limit within the
	// interval is counted, not logged.
	By string
}

// Handler is a slog.Handler that rate-limits the lines of each message
// and error (a record's Message and the text of its ErrKey attribute, or
// of the one given to WithAttrs, or of Options.By's instead; the other
// attributes aside) it hands to
// the handler it wraps:
//   - the first line of a message and error is logged, so a new fault is
//     in the log at once, whatever failed just before;
//   - then at most one per Every, with FailuresNotLogged, the lines left
//     out since the last one logged: those of the window (Every) it
//     opened, said by the first line of the window after;
//   - when that window after passes with no line of that message and
//     error, the fault had ended: the count is dropped and its next line,
//     even days later, is logged as a first one (a metric counts the
//     failures; the log says when they happen and why).
//
// It keeps at most MaxKeys messages and errors, forgetting first those
// with nothing left to say (their next line would be a first one); when
// none can be forgotten a new one is counted with the other new ones of
// its message (OtherErrors), making room for that by forgetting the one
// seen longest ago. While that other errors' line has a count to say (the
// fault goes on), at most FreshPerWindow new errors of its message a
// window get lines of their own; a fault whose text changes every time
// goes on under OtherErrors. Handlers made from it by WithAttrs and
// WithGroup share its counts.
type Handler struct {
	next  slog.Handler
	state *state
	err   string // the Options.By attribute given to WithAttrs, if any
}

// state is what a Handler and those made from it share.
type state struct {
	every   time.Duration
	maxKeys int
	now     func() time.Time
	by      string // the attribute telling runs of a message apart (Options.By)
	mu      sync.Mutex
	runs    map[key]*run // at most maxKeys
	// fresh counts, per message that spilled over, the new errors given
	// runs of their own in the window that began at start.
	fresh map[string]*freshWindow
}

// freshWindow is a window of a spilled message's new errors.
type freshWindow struct {
	start time.Time
	n     int
}

// key is what a run counts: a message with an error, or (other) with
// any error not counted apart.
type key struct {
	msg, err string
	other    bool
}

// run is when one key's last line was logged, when its last was seen
// and how many were left out since the last logged.
type run struct {
	loggedAt, seenAt time.Time
	skipped          int
}

// NewHandler returns a Handler over next.
func NewHandler(next slog.Handler, o Options) *Handler {
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.By == "" {
		o.By = ErrKey
	}
	return &Handler{next: next, state: &state{every: o.Every, maxKeys: o.MaxKeys, now: o.Now, by: o.By,
		runs: map[key]*run{}, fresh: map[string]*freshWindow{}}}
}

// Logger returns a logger writing through l's handler, each of its
// messages and errors at most once per DefaultEvery (see Handler).
func Logger(l *slog.Logger) *slog.Logger {
	return slog.New(NewHandler(l.Handler(), Options{}))
}

// Enabled reports whether the wrapped handler takes level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle passes r on when its message and error is to be logged (see
// Handler), with FailuresNotLogged when some of it were left out
// meanwhile; otherwise it counts r and drops it.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	skipped, other, ok := h.state.allow(r.Message, h.errText(r))
	if !ok {
		return nil
	}
	if skipped > 0 || other {
		r = r.Clone()
	}
	if skipped > 0 {
		r.AddAttrs(slog.Int(FailuresNotLogged, skipped))
	}
	if other {
		r.AddAttrs(slog.Bool(OtherErrors, true))
	}
	return h.next.Handle(ctx, r)
}

// errText is the text of r's Options.By attribute (ErrKey), else of h's.
func (h *Handler) errText(r slog.Record) string {
	text, found := h.err, false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == h.state.by {
			text, found = a.Value.Resolve().String(), true
		}
		return !found
	})
	return text
}

// WithAttrs returns a Handler over next.WithAttrs(attrs), sharing h's counts.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	err := h.err
	for _, a := range attrs {
		if a.Key == h.state.by {
			err = a.Value.Resolve().String()
		}
	}
	return &Handler{next: h.next.WithAttrs(attrs), state: h.state, err: err}
}

// WithGroup returns a Handler over next.WithGroup(name), sharing h's counts.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), state: h.state, err: h.err}
}

// allow records a line of msg with err and reports whether to log it,
// with the number of lines of its key left out since the last one logged
// and whether its key is msg's other errors.
func (s *state) allow(msg, err string) (skipped int, other, ok bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{msg: msg, err: err}
	r := s.runs[k]
	if r == nil {
		k = s.room(k, now)
		if r = s.runs[k]; r == nil {
			s.runs[k] = &run{loggedAt: now, seenAt: now}
			return 0, k.other, true
		}
	}
	r.seenAt = now
	switch since := now.Sub(r.loggedAt); {
	case since >= 2*s.every: // a window without it: a first line again, the count dropped
		r.loggedAt, r.skipped = now, 0
		return 0, k.other, true
	case since < s.every:
		r.skipped++
		return 0, false, false
	}
	skipped, r.loggedAt, r.skipped = r.skipped, now, 0
	return skipped, k.other, true
}

// room returns the key a line of a new key k counts under: that of k's
// message's other errors while that run has something to say (the
// message spilled over) and FreshPerWindow new errors of it had runs of
// their own in this window (a fault whose text changes every time,
// naming a user or a key, goes on there, not in new runs each logged);
// else k if there is room for it, once the runs with nothing left to say
// are forgotten; otherwise the other errors' key, forgetting the run seen
// longest ago if that key has no run yet.
func (s *state) room(k key, now time.Time) key {
	other := key{msg: k.msg, other: true}
	if r := s.runs[other]; r == nil || s.spent(r, now) {
		delete(s.fresh, k.msg)
	} else {
		w := s.fresh[k.msg]
		if w == nil || now.Sub(w.start) >= s.every {
			w = &freshWindow{start: now}
			s.fresh[k.msg] = w
		}
		if w.n >= FreshPerWindow {
			return other
		}
		w.n++
	}
	if len(s.runs) < s.maxKeys {
		return k
	}
	for rk, r := range s.runs {
		if s.spent(r, now) {
			delete(s.runs, rk)
		}
	}
	if len(s.runs) < s.maxKeys {
		return k
	}
	if s.runs[other] == nil {
		s.forgetOldest()
	}
	return other
}

// spent reports whether r's next line from now on would be logged as a
// first one: its window ended with nothing left out, or the window after
// it too.
func (s *state) spent(r *run, now time.Time) bool {
	since := now.Sub(r.loggedAt)
	return since >= 2*s.every || since >= s.every && r.skipped == 0
}

// forgetOldest removes the run seen longest ago.
func (s *state) forgetOldest() {
	var oldest key
	var at time.Time
	for rk, r := range s.runs {
		if at.IsZero() || r.seenAt.Before(at) {
			oldest, at = rk, r.seenAt
		}
	}
	delete(s.runs, oldest)
}
