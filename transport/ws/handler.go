// Package ws serves the live channel: GET /ws upgraded to a WebSocket that
// speaks the chat.v1 protocol (hub/protocol, docs/protocol.md).
//
// Authentication and the origin check happen before the upgrade; then the
// HTTP request returns and the connection runs on goroutines of its own,
// which the Handler tracks and Shutdown waits for. Each connection has up
// to three, all ended through the connection's context: the reader, which
// reads frames (so pongs and close frames are always noticed) and hands
// valid ones to a worker through a bounded queue; the worker, started by
// the first frame that needs the hub, which runs them against the hub one
// at a time, in order; and a writer, the only goroutine that writes data
// and close frames, which everyone else hands frames through a bounded
// queue (transport/internal/outbox) without blocking. Every PingInterval
// the writer starts a short-lived goroutine that sends a ping and waits
// for its pong, so the wait never holds up a delta (the library writes
// each frame under its own lock, so the ping goes out between two data
// frames). An idle connection holds the reader, the writer, the library's
// buffers, a few timers and room for a few frames; more room is taken only
// while frames pile up.
package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/internal/waitctx"
	"chatd/transport/httperr"
	"chatd/transport/internal/outbox"
	"chatd/transport/internal/urltoken"
	"chatd/transport/limits"
)

// Hub is the part of the hub the live channel uses.
type Hub interface {
	Register(sub hub.Subscriber)
	Detach(sub hub.Subscriber)
	Send(ctx context.Context, sub hub.Subscriber, userID string, req hub.SendRequest) (hub.Result, error)
	Regenerate(ctx context.Context, sub hub.Subscriber, userID string, req hub.RegenerateRequest) (hub.Result, error)
	CancelAnswer(ctx context.Context, userID, conversationID, messageID string) error
	Subscribe(ctx context.Context, sub hub.Subscriber, userID string, req hub.SubscribeRequest) error
	Unsubscribe(sub hub.Subscriber, conversationID string)
	// Drained is called by a connection's writer, as hub.DrainWatcher says.
	Drained(sub hub.Subscriber)
}

// Identity is who a token belongs to.
type Identity struct {
	UserID       string
	TokenVersion int64 // the session the token belongs to (hub.Session)
	// ExpiresAt is the token's exp claim, for Recheck.
	ExpiresAt time.Time
	// AcceptedUntil is when the token stops being accepted (its expiry
	// plus the authenticator's leeway), on this host's clock: the
	// connection is closed then with 4401 token expired. Zero: never.
	AcceptedUntil time.Time
}

// ErrUnauthorized is what Authenticate returns (wrapped) for a bad token;
// any other error is a server failure.
var ErrUnauthorized = errors.New("unauthorized")

// Authenticate checks a bearer token.
type Authenticate func(ctx context.Context, token string) (Identity, error)

// Recheck tells whether the session of id, which Authenticate returned
// when the connection opened, is still valid (not expired, not revoked,
// its user not deleted); errors are Authenticate's.
type Recheck func(ctx context.Context, id Identity) error

// SentBefore reports which kind of request of the user, if any, stored
// a message with the client message id (persistence's MessageByClientID
// finds it): hub.StoredNone for none.
type SentBefore func(ctx context.Context, userID, clientMessageID string) (hub.Stored, error)

// Metrics receives what the live channel counts.
type Metrics interface {
	ConnectionOpened()
	ConnectionClosed()
	// SlowClientDisconnected counts a connection closed for a client too
	// slow to take its frames, once per connection, with why: "queue_full"
	// (its queue filled: 4408) or "write_timeout" (a write outlived
	// WriteTimeout). A connection already closing for another reason (a
	// shutdown, a logout) whose last frames time out is not counted.
	SlowClientDisconnected(reason string)
	// ConnectionRefused counts a connection refused because its user had
	// as many open as the limit allows (closed 1013, or answered 429).
	ConnectionRefused()
}

// DefaultReadLimit is the default largest client frame: a send of
// protocol.MaxContentChars characters fits whatever the script, even with
// every character JSON-escaped as a \uXXXX surrogate pair (12 bytes), plus
// 16 KiB for the other fields.
const DefaultReadLimit = protocol.MaxContentChars*12 + 16<<10

// DefaultQueueBytes is the default bound of the frame data waiting for one
// client (16 MiB): a frame of a token is a few dozen bytes, a catch-up
// (the text and the reasoning of an answer so far, each up to
// CHATD_MAX_ANSWER_BYTES, 256 KiB by default, JSON-escaped) up to a few
// hundred KiB, at most hub.CatchUpBytes: about 3 MiB by default (12 ×
// CHATD_MAX_ANSWER_BYTES + 64 KiB), so a client that reads finds room for
// many full catch-ups, while one that stopped reading and keeps resuming
// long answers is cut off long before its frame bound (512 frames of
// 256 KiB: 128 MiB).
const DefaultQueueBytes = 16 << 20

// DefaultMaxFollowed is MaxFollowed's default: far more conversations
// than a tab follows (the web client follows the one it shows, and those
// it sent to until it unsubscribes), few enough that a connection cannot
// make the hub keep state for every conversation of its user.
const DefaultMaxFollowed = 1000

// MaxQueueBytes is the largest QueueBytes (1 GiB); a larger one is taken as it.
const MaxQueueBytes = outbox.MaxBytes

// Options configure a Handler. Zero fields take the documented defaults.
type Options struct {
	Hub          Hub
	Authenticate Authenticate
	// Recheck runs before each send and regenerate (required).
	Recheck Recheck
	// SentBefore, when set, is asked before a send or regenerate with a
	// client message id spends the user's budgets (sends per minute, and
	// new conversations for a send that would create one): one repeating
	// a client message id that the same kind of request stored (a retry
	// after a lost ack or a reconnect, hub.Stored.Retries) stores
	// nothing, the hub answers it with what it stored, and spends
	// nothing; what it found reaches the hub with the request, which
	// then looks the key up before anything is reserved or written.
	// Nil: every send and regenerate spends them.
	SentBefore SentBefore
	// Origins admits cross-origin browsers (see OriginChecker); same-host is always allowed.
	Origins *OriginChecker
	Metrics Metrics
	Logger  *slog.Logger
	// ReadLimit is the largest client frame in bytes; it defaults to
	// DefaultReadLimit. A larger frame closes the connection with 1009.
	ReadLimit int64
	// QueueSize is how many frames may wait for a slow client; it defaults
	// to 512. A client whose queue fills up is closed with 4408.
	QueueSize int
	// QueueBytes bounds the bytes of the frames waiting for a slow client;
	// it defaults to DefaultQueueBytes, at most 1 GiB. A client whose
	// queue passes it is closed with 4408, as for QueueSize. Nothing is
	// allocated for it up front.
	QueueBytes int
	// WriteTimeout bounds one frame write; it defaults to 10s.
	WriteTimeout time.Duration
	// StalledWrite is how long a frame write may last before the peer
	// counts as not reading: the connection then stops telling the hub it
	// is busy, so that the other tabs of its conversations get their
	// deltas at once rather than merged behind it (its queue bound and
	// WriteTimeout deal with it). It defaults to 5ms; a write to a peer
	// that reads takes microseconds.
	StalledWrite time.Duration
	// PingInterval is how often the server pings; it defaults to 25s
	// (under the 60 s idle timeout of common proxies).
	PingInterval time.Duration
	// PingTimeout is how long a pong may take before the peer counts as dead; it defaults to 15s.
	PingTimeout time.Duration
	// Limits bounds each user's connections and frames; it defaults to
	// limits.New with its defaults. Share one with the SSE routes.
	Limits *limits.Users
	// MaxInvalidFrames closes a connection with 1008 after more than that
	// many invalid frames in a minute, and with 4429 after more than that
	// many frames refused as over a rate limit (counted apart); it
	// defaults to 10.
	MaxInvalidFrames int
	// DispatchTimeout bounds the handling of one client frame, and the
	// upgrade's token check; it defaults to 30s.
	DispatchTimeout time.Duration
	// MaxPendingFrames is how many client frames may wait for the worker
	// while it runs a slow one; it defaults to 16. More are answered
	// rate_limited without waiting, so the reader never stalls.
	MaxPendingFrames int
	// MaxFollowed is how many conversations one connection may follow
	// (subscribe, send and regenerate make it follow theirs; unsubscribe
	// stops); it defaults to DefaultMaxFollowed. A frame that would follow
	// one more is refused with rate_limited, so that what the hub keeps
	// for one connection stays bounded.
	MaxFollowed int
	// RefuseTimeout bounds the close handshake of a WebSocket refused as
	// over its user's connection limit (the close frame's write and the
	// wait for the peer's); it defaults to DefaultRefuseTimeout.
	RefuseTimeout time.Duration
	// MaxRefusals is how many upgrades of one user are refused with a
	// close handshake and a log line within RefusalWindow; it defaults to
	// 5. Past it the user's further upgrades in the window are refused
	// quietly (see refuse).
	MaxRefusals int
	// RefusalWindow is the window of MaxRefusals, counted from the user's
	// first refusal; it defaults to 10s.
	RefusalWindow time.Duration
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = nopMetrics{}
	}
	if o.Origins == nil {
		o.Origins = &OriginChecker{}
	}
	setDefault(&o.ReadLimit, DefaultReadLimit)
	setDefault(&o.QueueSize, 512)
	setDefault(&o.QueueBytes, DefaultQueueBytes)
	setDefault(&o.WriteTimeout, 10*time.Second)
	setDefault(&o.StalledWrite, 5*time.Millisecond)
	setDefault(&o.PingInterval, 25*time.Second)
	setDefault(&o.PingTimeout, 15*time.Second)
	if o.Limits == nil {
		o.Limits = limits.New(limits.Options{})
	}
	setDefault(&o.MaxInvalidFrames, 10)
	setDefault(&o.DispatchTimeout, 30*time.Second)
	setDefault(&o.MaxPendingFrames, 16)
	setDefault(&o.MaxFollowed, DefaultMaxFollowed)
	setDefault(&o.RefuseTimeout, DefaultRefuseTimeout)
	setDefault(&o.MaxRefusals, 5)
	setDefault(&o.RefusalWindow, 10*time.Second)
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Handler upgrades authenticated requests and runs their connections.
type Handler struct {
	opts     Options
	log      *slog.Logger
	refusals *upgradeRefusals

	mu      sync.Mutex
	closing bool
	conns   map[*conn]struct{}
	wg      sync.WaitGroup
}

// requestIDHeader is the header the router's request log puts the
// request's id in (transport.RequestIDHeader), on the answer: the line
// of a WebSocket's opening names it, tying the request's line (101, which
// knows no user: the upgrade is not behind the router's authentication)
// to the connection and its user.
const requestIDHeader = "X-Request-ID"

// NewHandler returns a Handler; call Shutdown to close its connections.
func NewHandler(opts Options) *Handler {
	opts.setDefaults()
	return &Handler{
		opts:     opts,
		log:      opts.Logger,
		refusals: newUpgradeRefusals(opts.MaxRefusals, opts.RefusalWindow),
		conns:    make(map[*conn]struct{}),
	}
}

// ServeHTTP authenticates, checks the origin and limits, upgrades, and
// serves the connection until it ends.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if urltoken.InQuery(r) {
		httperr.Write(w, httperr.New(http.StatusBadRequest, httperr.CodeBadRequest, "tokens in the query string are refused; send Authorization: Bearer or the bearer.<token> subprotocol"))
		return
	}
	if !h.opts.Origins.Check(r) {
		httperr.Write(w, httperr.New(http.StatusForbidden, httperr.CodeForbidden, "origin not allowed"))
		return
	}
	if e := httperr.RepeatedAuthorization(r.Header); e != nil {
		httperr.Write(w, e)
		return
	}
	if e := checkSubprotocols(r); e != nil {
		httperr.Write(w, e)
		return
	}
	token, e := requestToken(r)
	if e != nil {
		httperr.Write(w, e)
		return
	}
	if h.refusedAgain(w, r, token) {
		return
	}
	id, ok := h.authenticate(w, r, token)
	if !ok {
		return
	}
	if !h.opts.Limits.AcquireConn(id.UserID) {
		h.refuse(w, r, id.UserID, token) // a HEAD too: 429, as the GET
		return
	}
	if r.Method == http.MethodHead {
		// A HEAD upgrades nothing: answered as a GET that asks no upgrade,
		// the connection limit looked at alike, the slot given back at once.
		h.opts.Limits.ReleaseConn(id.UserID)
		upgradeRequired(w)
		return
	}
	requestID := w.Header().Get(requestIDHeader) // the router's, before the upgrade writes the headers
	rw := &smallReadBuffer{ResponseWriter: w}
	ws, err := accept(rw, r)
	if err != nil {
		h.opts.Limits.ReleaseConn(id.UserID)
		h.log.Info("websocket upgrade failed", "err", err)
		return
	}
	c := newConn(h, ws, rw.cork, id)
	if !h.track(c) {
		h.opts.Limits.ReleaseConn(id.UserID)
		ws.Close(websocket.StatusCode(protocol.CloseGoingAway), protocol.ReasonShutdown)
		return
	}
	h.log.Info("websocket opened", "connection", c.id, "user", id.UserID, "request_id", requestID)
	// The connection outlives the request: its reader runs on a goroutine
	// of its own, which the handler tracks and Shutdown waits for, and the
	// request returns. The HTTP server's goroutine, deep in the router's
	// middleware with a stack grown by the upgrade and by open's session
	// read, ends, and with it the request's headers, contexts and router
	// state, instead of staying parked under every idle connection.
	c.open()
	go func() {
		defer h.untrack(c)
		defer h.opts.Limits.ReleaseConn(id.UserID)
		c.serve()
	}()
}

// accept upgrades r to a WebSocket speaking protocol.Name, without compression.
func accept(w http.ResponseWriter, r *http.Request) (*websocket.Conn, error) {
	return websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:       []string{protocol.Name},
		InsecureSkipVerify: true, // the origin was checked before, with proxies in mind
		CompressionMode:    websocket.CompressionDisabled,
	})
}

func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, token string) (Identity, bool) {
	if token == "" {
		httperr.Write(w, httperr.Unauthorized("missing token: send Authorization: Bearer <token> or the subprotocol bearer.<token>"))
		return Identity{}, false
	}
	// Bounded as a frame is: a store that does not answer gets the
	// upgrade a 503, not a request held for as long as it hangs.
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.DispatchTimeout)
	id, err := h.opts.Authenticate(ctx, token)
	cancel()
	switch {
	case errors.Is(err, ErrUnauthorized):
		httperr.Write(w, httperr.InvalidToken("invalid, expired or revoked token"))
		return id, false
	case httperr.ClientGone(r, err): // nobody to answer, and no failure of the server's
		w.WriteHeader(httperr.StatusClientClosed)
		return id, false
	case err != nil:
		h.log.Error("authenticate websocket", "err", err)
		httperr.Write(w, httperr.Unavailable("cannot check the token right now", err))
		return id, false
	}
	return id, true
}

func (h *Handler) track(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	return true
}

func (h *Handler) untrack(c *conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	h.wg.Done()
}

// Shutdown refuses new connections, closes open ones with 1001 after their
// queued frames are written, and waits for them or for ctx.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.Close(protocol.CloseGoingAway, protocol.ReasonShutdown)
	}
	if err := waitctx.Wait(ctx, &h.wg); err != nil {
		for _, c := range conns {
			c.ws.CloseNow()
		}
		return fmt.Errorf("close the websockets: %w", err)
	}
	return nil
}

type nopMetrics struct{}

func (nopMetrics) ConnectionOpened()             {}
func (nopMetrics) ConnectionClosed()             {}
func (nopMetrics) SlowClientDisconnected(string) {}
func (nopMetrics) ConnectionRefused()            {}
