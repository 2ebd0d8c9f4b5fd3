// Package limits holds the per-user limits of the transports: open live
// connections, client frames per minute (shared by WebSocket and SSE), and
// new conversations per minute (REST and the live channel together).
package limits

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"chatd/hub/protocol"
	"chatd/transport/internal/inflight"
)

// Users bounds, per user, open connections and frames per minute. One
// Users is shared by every live transport of a server; it is safe for
// concurrent use.
type Users struct {
	maxConns int
	frames   rate
	sends    rate
	refused  rate
	convs    rate
	shared   *sharedLimits // nil: per process only
	sending  inflight.Keys // client message ids of sends and regenerates being handled (ClaimSend)

	mu    sync.Mutex
	users map[string]*userState
	swept time.Time
}

type userState struct {
	conns   int
	frames  bucket
	sends   bucket
	refused bucket // refused sends that gave their send back (Spent.GiveOn)
	convs   bucket
}

// rate is a token bucket's refill per second and capacity.
type rate struct {
	perSecond float64
	burst     float64
}

func perMinute(n int) rate {
	return rate{perSecond: float64(n) / 60, burst: max(1, float64(n)/4)}
}

type bucket struct {
	tokens float64
	last   time.Time
}

// take spends one token if there is one.
func (b *bucket) take(r rate, now time.Time) bool {
	_, ok := b.takeOrWait(r, now)
	return ok
}

// takeOrWait spends one token, or says how long until there is one.
func (b *bucket) takeOrWait(r rate, now time.Time) (time.Duration, bool) {
	b.refill(r, now)
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / r.perSecond * float64(time.Second)), false
	}
	b.tokens--
	return 0, true
}

// give returns a token take spent, for a request another budget refused
// afterwards: the bucket holds what it would without that take, never
// more than its burst.
func (b *bucket) give(r rate, now time.Time) {
	b.refill(r, now)
	b.tokens = min(r.burst, b.tokens+1)
}

// refill adds the tokens earned since the last refill (a new bucket is full).
func (b *bucket) refill(r rate, now time.Time) {
	if b.last.IsZero() {
		b.tokens = r.burst
	} else if now.After(b.last) {
		b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.perSecond)
	}
	b.last = later(b.last, now)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Options configure Users. Zero fields take the documented defaults.
type Options struct {
	// MaxConns bounds one user's open connections; it defaults to 20.
	MaxConns int
	// FramesPerMinute bounds one user's client frames; it defaults to 300.
	FramesPerMinute int
	// SendsPerMinute bounds one user's send and regenerate requests; it defaults to 30.
	SendsPerMinute int
	// ConversationsPerMinute bounds the conversations one user creates
	// (POST /api/conversations and sends without a conversation), with a
	// burst of as many; it defaults to 10.
	ConversationsPerMinute int
	// RefusedSendsPerMinute bounds, per user, the sends and regenerates
	// the hub refuses (generation_running, not_found, ...) that give their
	// send back (Spent.GiveOn); past it a refused one keeps its send
	// spent, so refusals, each of which may cost the hub a store read,
	// stay bounded by both budgets together. It defaults to SendsPerMinute.
	RefusedSendsPerMinute int

	// Shared, when set, also holds MaxConns, SendsPerMinute,
	// ConversationsPerMinute and RefusedSendsPerMinute for each user
	// across every instance of a cluster (see Shared); nil keeps them per
	// process.
	Shared Shared
	// SharedTimeout bounds one call to Shared; it defaults to
	// DefaultSharedTimeout.
	SharedTimeout time.Duration
	// Logger reports a Shared backend that cannot be reached; it defaults to slog.Default().
	Logger *slog.Logger
	// OnSendWait, when set, is called each time ClaimSend starts waiting
	// for an earlier send with the same client message id (tests).
	OnSendWait func()
}

// New returns Users with opts.
func New(opts Options) *Users {
	l := newUsers(orDefault(opts.MaxConns, 20), orDefault(opts.FramesPerMinute, 300), orDefault(opts.SendsPerMinute, 30))
	n := orDefault(opts.ConversationsPerMinute, 10)
	l.convs = rate{perSecond: float64(n) / 60, burst: float64(n)}
	refused := orDefault(opts.RefusedSendsPerMinute, orDefault(opts.SendsPerMinute, 30))
	l.refused = perMinute(refused)
	l.shared = newSharedLimits(opts, orDefault(opts.SendsPerMinute, 30), n, refused)
	l.sending.OnWait = opts.OnSendWait
	return l
}

func orDefault(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

func newUsers(maxConns, framesPerMinute, sendsPerMinute int) *Users {
	return &Users{maxConns: maxConns, frames: perMinute(framesPerMinute),
		sends: perMinute(sendsPerMinute), users: make(map[string]*userState)}
}

func (l *Users) state(userID string) *userState {
	s := l.users[userID]
	if s == nil {
		// A new user's entry: the idle ones go first (at most once a
		// minute), whatever adds them (a REST creation or send adds users
		// no connection ever counted, on an instance serving API clients).
		l.sweepLocked(time.Now())
		s = &userState{}
		l.users[userID] = s
	}
	return s
}

// AcquireConn counts a new connection, or refuses it past the limit (of
// this process, and of the cluster with Options.Shared).
func (l *Users) AcquireConn(userID string) bool {
	if !l.acquireLocal(userID) {
		return false
	}
	if !l.shared.acquireConn(userID, l.maxConns) {
		l.releaseLocal(userID)
		return false
	}
	return true
}

func (l *Users) acquireLocal(userID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state(userID)
	if s.conns >= l.maxConns {
		return false
	}
	s.conns++
	return true
}

// ReleaseConn forgets a connection counted by AcquireConn.
func (l *Users) ReleaseConn(userID string) {
	l.releaseLocal(userID)
	l.shared.releaseConn(userID)
}

func (l *Users) releaseLocal(userID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.users[userID]; s != nil && s.conns > 0 {
		s.conns--
	}
}

// AllowFrame spends the user's budget for one client frame, of any type.
func (l *Users) AllowFrame(userID string) *protocol.Error {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.state(userID).frames.take(l.frames, now) {
		return protocol.Errorf(protocol.CodeRateLimited, "too many frames; slow down")
	}
	return nil
}

// ClaimSend marks a send (or regenerate) of userID with clientMessageID as
// being handled, after waiting (bounded by ctx, whose error it returns,
// wrapped) for one with the same id, over any live transport of this
// process, to finish: two copies of a send arriving at once (a retry racing
// its original, two tabs) are then handled one after the other, and the
// second finds the first's message stored (SentBefore) and spends no budget. The caller
// calls release once the hub has stored the send (or failed it); release
// may be called more than once. Copies arriving at two instances of a
// cluster are not ordered: both spend, and the one the store refuses is
// answered as a repeat (hub.Result.Repeated), whose transport gives its
// budget back.
func (l *Users) ClaimSend(ctx context.Context, userID, clientMessageID string) (release func(), err error) {
	if clientMessageID == "" {
		return func() {}, nil
	}
	return l.sending.Claim(ctx, inflight.Key(userID, clientMessageID))
}

// AllowSend spends the user's budget for one send or regenerate (of this
// process, and of the cluster with Options.Shared), as SpendSend does
// without a new conversation, and keeps it spent.
func (l *Users) AllowSend(userID string) *protocol.Error {
	if _, r := l.SpendSend(userID, false); r != nil {
		return r.Err
	}
	return nil
}

// AllowConversation spends the user's budget for creating one
// conversation (of this process, and of the cluster with Options.Shared)
// as SpendConversation does, and keeps it spent, or says how long to wait
// for the next.
func (l *Users) AllowConversation(userID string) (time.Duration, bool) {
	if _, r := l.SpendConversation(userID); r != nil {
		return r.Wait, false
	}
	return 0, true
}

// ConnectedUsers returns the users with at least one open connection.
func (l *Users) ConnectedUsers() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id, s := range l.users {
		if s.conns > 0 {
			out = append(out, id)
		}
	}
	return out
}

// sweepLocked forgets users without connections whose buckets are full
// again, so memory stays bounded.
func (l *Users) sweepLocked(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	for id, s := range l.users {
		if s.conns == 0 && now.Sub(s.frames.last) > 2*time.Minute && now.Sub(s.sends.last) > 2*time.Minute &&
			now.Sub(s.refused.last) > 2*time.Minute && now.Sub(s.convs.last) > 2*time.Minute {
			delete(l.users, id)
		}
	}
}
