package ws

import (
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"chatd/hub/protocol"
	"chatd/transport/httperr"
	"chatd/transport/internal/headers"
)

// ReasonTooManyConnections is the reason of the 1013 close of a WebSocket
// refused because its user has CHATD_MAX_CONNS_PER_USER connections open.
const ReasonTooManyConnections = "too many connections"

// DefaultRefuseTimeout is the default bound of a refused connection's
// close handshake (250ms): a browser on any working link answers the
// close frame well within it, and a refusal holds its goroutine no longer.
const DefaultRefuseTimeout = 250 * time.Millisecond

// ConnRetryAfter is the Retry-After of the 429 refusing a request over the
// user's connection limit that is no WebSocket upgrade, as an event
// stream's.
const ConnRetryAfter = 10 * time.Second

// maxRefusalEntries bounds the users, and the tokens, the refusals keep.
const maxRefusalEntries = 10000

// refuse answers an upgrade over the user's connection limit. A browser
// is not told the status of a failed upgrade, and its client would take a
// 429 for a server that cannot be reached over WebSocket at all and fall
// back to SSE; so the upgrade is accepted and closed at once with 1013
// (try again later: the client reconnects with backoff, still over
// WebSocket) and ReasonTooManyConnections. The connection was never
// counted against the limit, gets no frame (no hello) and never meets
// the hub. Its close handshake is bounded by RefuseTimeout; past the
// user's MaxRefusals in RefusalWindow the refusal is quiet: the close
// frame is written and the connection closed without waiting for the
// peer's (a browser still reads the 1013 and its reason) and without a
// log line; and from the MaxRefusals-th on, the token the upgrade came
// with is refused again without a check until the window ends
// (refusedAgain). Every refusal is counted
// (Metrics.ConnectionRefused). A request that is no WebSocket upgrade
// gets a 429.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, userID, token string) {
	h.opts.Metrics.ConnectionRefused()
	if r.Method != http.MethodGet || !isUpgrade(r) { // a HEAD upgrades nothing, whatever its headers
		httperr.Write(w, httperr.RateLimited("too many open connections for this user", ConnRetryAfter))
		return
	}
	n := h.refusals.note(userID, token, time.Now())
	quiet := n > h.opts.MaxRefusals
	rw := &smallReadBuffer{ResponseWriter: w}
	ws, err := accept(rw, r)
	if err != nil {
		h.log.Info("websocket upgrade failed", "err", err)
		return
	}
	if rw.cork != nil {
		now := time.Now()
		_ = rw.cork.SetWriteDeadline(now.Add(h.opts.RefuseTimeout))
		wait := h.opts.RefuseTimeout
		if quiet {
			wait = 0 // the read of the peer's close frame fails at once
		}
		_ = rw.cork.SetReadDeadline(now.Add(wait))
	}
	switch {
	case !quiet:
		h.log.Info("websocket refused: too many connections", "user", userID)
	case n == h.opts.MaxRefusals+1:
		h.log.Info("websocket refused: too many connections; further refusals of the user are quiet",
			"user", userID, "window", h.opts.RefusalWindow.String())
	}
	if err := ws.Close(websocket.StatusCode(protocol.CloseTryAgainLater), ReasonTooManyConnections); err != nil && !quiet {
		h.log.Debug("websocket close handshake", "err", err)
	}
}

// refusedAgain refuses, quietly and without checking it again, an upgrade
// with a token whose user was refused past MaxRefusals in the current
// window, while the user still has no room; it reports whether it did.
// The token was checked when it was first refused: one revoked since is
// told 1013 rather than 401 until the window ends, and then 401.
func (h *Handler) refusedAgain(w http.ResponseWriter, r *http.Request, token string) bool {
	userID, ok := h.refusals.quiet(token, time.Now())
	if !ok || !isUpgrade(r) {
		return false
	}
	if h.opts.Limits.AcquireConn(userID) {
		h.opts.Limits.ReleaseConn(userID) // room again: the upgrade goes the whole way
		return false
	}
	h.refuse(w, r, userID, token)
	return true
}

// isUpgrade reports whether r asks for a WebSocket (Connection: upgrade,
// Upgrade: websocket), which websocket.Accept checks again.
func isUpgrade(r *http.Request) bool {
	return headers.HasToken(r.Header, "Connection", "upgrade") && headers.HasToken(r.Header, "Upgrade", "websocket")
}

// upgradeRefusals counts, per user, the upgrades refused for the connection
// limit in a window from the first, and remembers the tokens of users past
// the limit of refusals until their window ends. Each map holds at most
// maxRefusalEntries: when full, a new user's refusals are not counted
// (they take the full path) until entries expire.
type upgradeRefusals struct {
	max    int
	window time.Duration

	mu     sync.Mutex
	users  map[string]refusalRun
	tokens map[string]refusalRun // the user's run, by token
}

// refusalRun is one user's refusals in the window that started at start.
type refusalRun struct {
	userID string
	start  time.Time
	n      int
}

func newUpgradeRefusals(max int, window time.Duration) *upgradeRefusals {
	return &upgradeRefusals{max: max, window: window, users: map[string]refusalRun{}, tokens: map[string]refusalRun{}}
}

// note counts one refusal of userID, with token, and returns the user's
// refusals in the window so far (1 for the first).
func (f *upgradeRefusals) note(userID, token string, now time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	run, ok := f.users[userID]
	if !ok || now.Sub(run.start) >= f.window {
		if !ok && !f.room(f.users, now) {
			return 1
		}
		run = refusalRun{userID: userID, start: now}
	}
	run.n++
	f.users[userID] = run
	if run.n >= f.max && token != "" {
		if _, known := f.tokens[token]; known || f.room(f.tokens, now) {
			f.tokens[token] = run
		}
	}
	return run.n
}

// quiet returns the user of token when the token's user is past its
// refusals in a window that has not ended.
func (f *upgradeRefusals) quiet(token string, now time.Time) (string, bool) {
	if token == "" {
		return "", false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	run, ok := f.tokens[token]
	if !ok {
		return "", false
	}
	if now.Sub(run.start) >= f.window {
		delete(f.tokens, token)
		return "", false
	}
	return run.userID, true
}

// room reports whether m may take one more entry, dropping the expired
// ones when it is full; f.mu is held.
func (f *upgradeRefusals) room(m map[string]refusalRun, now time.Time) bool {
	if len(m) < maxRefusalEntries {
		return true
	}
	for k, run := range m {
		if now.Sub(run.start) >= f.window {
			delete(m, k)
		}
	}
	return len(m) < maxRefusalEntries
}
