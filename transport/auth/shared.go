package auth

import (
	"context"
	"log/slog"
	"time"
)

// SharedWindows holds the login and registration limits for every
// instance of a cluster together (hub/natsbus implements it over NATS
// JetStream KV; the app injects it through AccountOptions.Shared), so
// that a round-robin load balancer does not give a guesser each
// instance's allowance. Each limit is a window of max events per key
// counted from the key's first event, as in one process. Methods are safe
// for concurrent use.
type SharedWindows interface {
	// Take counts one event for key unless max are counted in its window
	// of length already; then it reports how long that window still runs.
	Take(ctx context.Context, key string, max int, length time.Duration) (wait time.Duration, ok bool, err error)
	// Refund gives back one event counted by Take.
	Refund(ctx context.Context, key string) error
	// Reset forgets key's events.
	Reset(ctx context.Context, key string) error
}

// limitAttr is the attribute naming the limit in a gate's lines; the
// gates' log tells their failures apart by it (lograte.Options.By).
const limitAttr = "limit"

// gate is one limit of the account routes: a window per key in this
// process, and with a SharedWindows the same window for the whole
// cluster, consulted after the process's own (which a request refused
// here never reaches). When the cluster's cannot be reached the request
// goes through on the process's limit alone (logged, through a
// lograte.Handler the gates of an Accounts share, by limitAttr: each
// message of each limit once per lograte.DefaultEvery, the first, then
// one with the count left out, whatever the error's text): an outage of
// the bus must not lock everybody out.
type gate struct {
	local   *windowLimiter
	shared  SharedWindows // nil: this process only
	name    string        // prefixes the shared key: what is counted
	timeout time.Duration
	log     *slog.Logger
}

func newGate(name string, max int, length time.Duration, opts AccountOptions, log *slog.Logger) *gate {
	return &gate{local: newWindowLimiter(max, length, opts.MaxTrackedKeys, opts.Now), shared: opts.Shared,
		name: name, timeout: opts.SharedTimeout, log: log}
}

// take counts one event for key, or reports why it was refused (key is
// blocked, or this process's table is full of blocked keys) and for how
// much longer (nothing is counted then).
func (g *gate) take(key string) (time.Duration, refusal) {
	wait, r := g.local.limit(key)
	if r != allowed || g.shared == nil {
		return wait, r
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	wait, ok, err := g.shared.Take(ctx, g.name+":"+key, g.local.max, g.local.window)
	if err != nil {
		g.log.Warn("cluster-wide limit unavailable; this server's limit only", slog.String(limitAttr, g.name),
			slog.Any("err", err))
		return 0, allowed
	}
	if !ok {
		g.local.refund(key)
		return wait, keyBlocked
	}
	return wait, allowed
}

// blockedFor reports whether key is blocked and for how much longer,
// counting nothing. It reads this process's window only (SharedWindows
// has no read): a key blocked in the cluster's alone is not seen.
func (g *gate) blockedFor(key string) (time.Duration, bool) {
	return g.local.isBlocked(key)
}

// refund gives back one event counted by take.
func (g *gate) refund(key string) {
	g.local.refund(key)
	g.call("refund", key, SharedWindows.Refund)
}

// reset forgets key's events.
func (g *gate) reset(key string) {
	g.local.reset(key)
	g.call("reset", key, SharedWindows.Reset)
}

// call runs one shared operation on key, if there is a shared limit; a
// failure is logged (the cluster's window then counts one event too many
// until it ends).
func (g *gate) call(what, key string, op func(SharedWindows, context.Context, string) error) {
	if g.shared == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	if err := op(g.shared, ctx, g.name+":"+key); err != nil {
		g.log.Warn("cluster-wide limit: "+what, slog.String(limitAttr, g.name), slog.Any("err", err))
	}
}
