// Package sse serves the live channel's fallback for clients that cannot
// open a WebSocket: the same frames, as Server-Sent Events over plain HTTP
// (event: the frame type, id: its answer and seq, data: its JSON), read by the browser
// with fetch and a ReadableStream.
package sse

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/auth"
	"chatd/transport/httperr"
	"chatd/transport/internal/headers"
	"chatd/transport/internal/reqtimeout"
	"chatd/transport/internal/urltoken"
	"chatd/transport/limits"
)

// Hub is the part of the hub the SSE routes use.
type Hub interface {
	Register(sub hub.Subscriber)
	Detach(sub hub.Subscriber)
	Send(ctx context.Context, sub hub.Subscriber, userID string, req hub.SendRequest) (hub.Result, error)
	Regenerate(ctx context.Context, sub hub.Subscriber, userID string, req hub.RegenerateRequest) (hub.Result, error)
	CancelAnswer(ctx context.Context, userID, conversationID, messageID string) error
	Subscribe(ctx context.Context, sub hub.Subscriber, userID string, req hub.SubscribeRequest) error
	// ActiveAnswer returns the running answer of the user's conversation,
	// or "" when nothing runs or the conversation is not the user's;
	// asking a cluster's bus ends with ctx.
	ActiveAnswer(ctx context.Context, userID, conversationID string) string
	// Drained is called by a stream's writer, as hub.DrainWatcher says.
	Drained(sub hub.Subscriber)
}

// Options configure a Handler. Zero fields take the documented defaults.
type Options struct {
	Hub Hub
	// Limits is shared with the WebSocket handler; it defaults to limits.New's defaults.
	Limits *limits.Users
	Logger *slog.Logger
	// QueueSize is how many frames may wait for a slow client; it defaults to 512.
	QueueSize int
	// QueueBytes bounds the bytes of the frames waiting for a slow client;
	// it defaults to ws.DefaultQueueBytes (16 MiB), at most 1 GiB. A
	// client that lets either bound fill is disconnected.
	QueueBytes int
	// KeepAlive is the interval of comment lines that keep proxies from
	// closing an idle stream; it defaults to 15s.
	KeepAlive time.Duration
	// RequestTimeout bounds starting an answer, a cancel, a subscribe and
	// the session check of a stream as it opens (past it: 503
	// unavailable); it defaults to 30s.
	RequestTimeout time.Duration
	// WriteTimeout bounds each write of a stream to its socket; it
	// defaults to 10s. A client that stops reading is disconnected after
	// it, its connection slot freed; it resumes with Last-Event-ID.
	WriteTimeout time.Duration
	// Recheck tells whether the session of an identity the authentication
	// middleware returned is still valid (auth.Authenticator.Recheck:
	// errors wrapping auth.ErrUnauthorized mean it is not). A stream checks
	// it once more after registering with the hub, so that a logout landing
	// between the two is not missed, and a send or regenerate answered 202
	// once its body is read. A store that cannot answer refuses the
	// request with 503 unavailable. Nil skips these checks.
	Recheck func(ctx context.Context, id auth.Identity) error
	// SentBefore, when set, reports which kind of request of the user, if
	// any, stored a message with a client message id (persistence's
	// MessageByClientID finds it; hub.StoredNone for none): a send or
	// regenerate repeating one of its own kind (a retry after a lost
	// answer or a reconnect, hub.Stored.Retries) is answered by the hub
	// with what it stored, and spends none of the user's sends per
	// minute; what it found reaches the hub with the request, which then
	// looks the key up before anything is reserved or written. Nil: every
	// send and regenerate spends one.
	SentBefore func(ctx context.Context, userID, clientMessageID string) (hub.Stored, error)
	// Metrics receives what the streams count; nil counts nothing.
	Metrics Metrics
	// StalledWrite is how long writing one event may last before the
	// client counts as not reading: the stream then stops telling the hub
	// it is busy, so that the other tabs of its conversations get their
	// deltas at once rather than merged behind it. It defaults to 5ms.
	StalledWrite time.Duration
}

// Metrics receives what the streams count.
type Metrics interface {
	// SlowClientDisconnected counts a stream closed for a client too
	// slow to take its frames, once per stream, with why: "queue_full"
	// (its queue filled) or "write_timeout" (a write outlived
	// WriteTimeout). A stream already closing for another reason (a
	// shutdown, a logout) whose last frames time out is not counted.
	SlowClientDisconnected(reason string)
}

type nopMetrics struct{}

func (nopMetrics) SlowClientDisconnected(string) {}

// DefaultQueueBytes is QueueBytes' default, the WebSocket's
// (ws.DefaultQueueBytes).
const DefaultQueueBytes = 16 << 20

// Handler serves the SSE routes.
type Handler struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	closing bool
	streams map[*stream]struct{}
	running sync.WaitGroup // the streams tracked, until closed
}

// NewHandler returns a Handler.
func NewHandler(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Limits == nil {
		opts.Limits = limits.New(limits.Options{})
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 512
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = DefaultQueueBytes
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 15 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.StalledWrite <= 0 {
		opts.StalledWrite = 5 * time.Millisecond
	}
	if opts.Metrics == nil {
		opts.Metrics = nopMetrics{}
	}
	return &Handler{opts: opts, log: opts.Logger, streams: make(map[*stream]struct{})}
}

// Routes adds the SSE routes to an authenticated /api group.
func (h *Handler) Routes(authed gin.IRouter) {
	authed.POST("/conversations/:id/messages", noTokenInQuery, h.send)
	authed.POST("/conversations/:id/regenerate", noTokenInQuery, h.regenerate)
	authed.POST("/conversations/:id/cancel", noTokenInQuery, h.cancel)
	authed.GET("/conversations/:id/stream", noTokenInQuery, h.resume)
	authed.GET("/events", noTokenInQuery, h.events)
}

// noTokenInQuery refuses a request that carries a token in its query
// string (in any case: urltoken.InQuery) with 400, as the WebSocket
// upgrade does: URLs end up in access logs. The token is never read from
// there; a request without Authorization was answered 401 before.
func noTokenInQuery(c *gin.Context) {
	if urltoken.InQuery(c.Request) {
		httperr.AbortError(c, httperr.BadRequest("tokens in the query string are refused; send Authorization: Bearer"))
		return
	}
	c.Next()
}

// events is a long-lived stream of the user's conversation frames and, with
// ?conversationId=, of everything that conversation's subscribers receive
// (messageId and lastSeq, or Last-Event-ID, resume an answer as in
// subscribe; see resumeRequest for both). It ends when the client leaves, at logout or shutdown, or
// when the client is too slow; the client then opens it again.
func (h *Handler) events(c *gin.Context) {
	id, _ := auth.IdentityFrom(c)
	if perr := h.opts.Limits.AllowFrame(id.UserID); perr != nil {
		httperr.AbortError(c, httperr.RateLimited(perr.Message, 10*time.Second))
		return
	}
	convID := c.Query("conversationId")
	if convID != "" && !persistence.ValidID(convID) {
		httperr.AbortError(c, httperr.InvalidField("conversationId", "is not a valid id"))
		return
	}
	req, err := h.eventsRequest(c, id.UserID, convID)
	if err != nil {
		httperr.AbortError(c, err)
		return
	}
	s, err := h.open(c.Request.Context(), id)
	if err != nil {
		httperr.AbortError(c, err)
		return
	}
	defer h.close(s)
	if convID != "" {
		if err := h.subscribe(c, s, id.UserID, req); err != nil {
			httperr.AbortError(c, err)
			return
		}
	}
	h.stream(c, s, func(*protocol.Frame) bool { return false })
}

// eventsRequest reads what GET /api/events resumes, before its stream
// opens: a malformed messageId, lastSeq or lastReasoningSeq (or, with
// conversationId, a Last-Event-ID that is no event id and the only
// cursor) is a 400, not a stream opened (a connection slot taken, the
// session checked) and then refused. Without conversationId nothing is
// resumed: the URL's values are checked all the same, Last-Event-ID is
// ignored.
func (h *Handler) eventsRequest(c *gin.Context, userID, convID string) (hub.SubscribeRequest, error) {
	if convID == "" {
		return urlCursor(c, "")
	}
	// The stream carries every later answer of the conversation too: the
	// events an EventSource got may be of one that started after the named
	// answer ended, but not while it still runs.
	req, _, err := resumeRequest(c, convID, true, func(req hub.SubscribeRequest) bool {
		return req.MessageID != "" && h.activeAnswer(c, userID, convID) == req.MessageID
	})
	return req, err
}

type sendBody struct {
	Content         *string `json:"content"`
	ClientMessageID string  `json:"clientMessageId"`
	ParentMessageID *string `json:"parentMessageId"`
	Model           string  `json:"model"`
}

func (h *Handler) send(c *gin.Context) {
	who, convID, ok := h.request(c)
	if !ok {
		return
	}
	var b sendBody
	if err := h.decodeBody(c, &b, httperr.DecodeJSON); err != nil {
		httperr.AbortError(c, err)
		return
	}
	f := protocol.ClientFrame{Type: protocol.TypeSend, ConversationID: convID, Content: b.Content,
		ClientMessageID: b.ClientMessageID, ParentMessageID: b.ParentMessageID, Model: b.Model}
	if perr := f.Validate(); perr != nil {
		httperr.AbortError(c, statusOf(perr))
		return
	}
	h.startKeyed(c, who, f, func(ctx context.Context, sub hub.Subscriber, stored hub.Stored) (hub.Result, error) {
		return h.opts.Hub.Send(ctx, sub, who.UserID, hub.SendRequest{ConnectionID: connID(sub), ConversationID: convID,
			Content: *b.Content, ClientMessageID: b.ClientMessageID, ParentMessageID: b.ParentMessageID, Model: b.Model,
			Stored: stored})
	})
}

// startKeyed starts the send or regenerate f with start: a copy of it
// being handled (another tab, a retry racing its original) is waited for,
// up to RequestTimeout, and one whose key the same kind of request stored
// already (that copy, or a retry after a lost answer) spends no budget;
// start is given what the key was found to be (for the hub). The claim
// ends once the hub has handled the request, not with the stream.
func (h *Handler) startKeyed(c *gin.Context, who auth.Identity, f protocol.ClientFrame,
	start func(context.Context, hub.Subscriber, hub.Stored) (hub.Result, error),
) {
	release, ok := h.claimSend(c, who.UserID, f.ClientMessageID)
	if !ok {
		return
	}
	defer release()
	var spent limits.Spent
	stored := h.stored(c.Request.Context(), who.UserID, f.ClientMessageID)
	if !stored.Retries(f.Type == protocol.TypeRegenerate) {
		if spent, ok = h.spendSend(c, who.UserID); !ok {
			return
		}
	}
	h.startSpent(c, who, spent, func(ctx context.Context, sub hub.Subscriber) (hub.Result, error) {
		defer release()
		return start(ctx, sub, stored)
	})
}

type regenerateBody struct {
	MessageID       string `json:"messageId"`
	Model           string `json:"model"`
	ClientMessageID string `json:"clientMessageId"`
}

func (h *Handler) regenerate(c *gin.Context) {
	who, convID, ok := h.request(c)
	if !ok {
		return
	}
	var b regenerateBody
	if err := h.decodeBody(c, &b, httperr.DecodeOptionalJSON); err != nil {
		httperr.AbortError(c, err)
		return
	}
	f := protocol.ClientFrame{Type: protocol.TypeRegenerate, ConversationID: convID, MessageID: b.MessageID,
		Model: b.Model, ClientMessageID: b.ClientMessageID}
	if perr := f.Validate(); perr != nil { // messageId, the key's length
		httperr.AbortError(c, statusOf(perr))
		return
	}
	h.startKeyed(c, who, f, func(ctx context.Context, sub hub.Subscriber, stored hub.Stored) (hub.Result, error) {
		return h.opts.Hub.Regenerate(ctx, sub, who.UserID, hub.RegenerateRequest{ConnectionID: connID(sub),
			ConversationID: convID, MessageID: b.MessageID, Model: b.Model, ClientMessageID: b.ClientMessageID,
			Stored: stored})
	})
}

// cancelBody is the optional body of a cancel: the answer to stop.
type cancelBody struct {
	MessageID string `json:"messageId"`
}

func (h *Handler) cancel(c *gin.Context) {
	who, convID, ok := h.request(c)
	if !ok {
		return
	}
	var b cancelBody
	if err := h.decodeBody(c, &b, httperr.DecodeOptionalJSON); err != nil {
		httperr.AbortError(c, err)
		return
	}
	if b.MessageID != "" && !persistence.ValidID(b.MessageID) {
		httperr.AbortError(c, httperr.InvalidField("messageId", "is not a valid id"))
		return
	}
	ctx, cancel := reqtimeout.Bound(c.Request.Context(), h.opts.RequestTimeout) // the token check's deadline
	defer cancel()
	if err := h.opts.Hub.CancelAnswer(ctx, who.UserID, convID, b.MessageID); err != nil {
		httperr.AbortError(c, statusOf(err))
		return
	}
	c.Status(http.StatusNoContent)
}

// decodeBody reads the request's body into dst with decode
// (httperr.DecodeJSON or DecodeOptionalJSON) under the request's one
// RequestTimeout deadline (reqtimeout.Bound): a body that arrives whole
// only past it is 408 request_timeout (httperr.BodyTooLate), not the 503
// of the store call that would follow with no time left.
func (h *Handler) decodeBody(c *gin.Context, dst any, decode func(*http.Request, any) error) error {
	ctx, cancel := reqtimeout.Bound(c.Request.Context(), h.opts.RequestTimeout)
	defer cancel()
	return decode(c.Request.WithContext(ctx), dst)
}

// activeAnswer is the Hub's ActiveAnswer, bounded by the request and its
// one RequestTimeout deadline (reqtimeout.Bound).
func (h *Handler) activeAnswer(c *gin.Context, userID, convID string) string {
	ctx, cancel := reqtimeout.Bound(c.Request.Context(), h.opts.RequestTimeout)
	defer cancel()
	return h.opts.Hub.ActiveAnswer(ctx, userID, convID)
}

// subscribe subscribes s as req asks, within RequestTimeout (the hub reads
// the store), and returns the HTTP error of a refusal.
func (h *Handler) subscribe(c *gin.Context, s *stream, userID string, req hub.SubscribeRequest) error {
	ctx, cancel := reqtimeout.Bound(c.Request.Context(), h.opts.RequestTimeout)
	defer cancel()
	if err := h.opts.Hub.Subscribe(ctx, s, userID, req); err != nil {
		return statusOf(err)
	}
	return nil
}

func (h *Handler) resume(c *gin.Context) {
	who, convID, ok := h.request(c)
	if !ok {
		return
	}
	// The stream carries the events of one answer, and ends after its done.
	req, over, err := resumeRequest(c, convID, false, func(hub.SubscribeRequest) bool { return true })
	if err != nil {
		httperr.AbortError(c, err)
		return
	}
	if over { // the client has all of it, done included (an EventSource reconnecting after the end)
		c.Status(http.StatusNoContent)
		return
	}
	if req.MessageID == "" {
		// The answer running now, named so the stream ends at its done
		// (and still gets it if it ends before the subscribe), announced
		// with its message frame as to a subscribe that names none.
		req.MessageID, req.Announce = h.activeAnswer(c, who.UserID, convID), true
	}
	if req.MessageID == "" {
		c.Status(http.StatusNoContent)
		return
	}
	s, err := h.open(c.Request.Context(), who)
	if err != nil {
		httperr.AbortError(c, err)
		return
	}
	defer h.close(s)
	if err := h.subscribe(c, s, who.UserID, req); err != nil {
		httperr.AbortError(c, err)
		return
	}
	h.pump(c, s, req.MessageID)
}

// resumeRequest reads messageId and the resume cursor: lastSeq and
// lastReasoningSeq in the URL, or the Last-Event-ID header. A browser's
// EventSource reconnects to the URL it was opened with, whose cursor is
// the one of its first open, and sends Last-Event-ID, the id of the last
// event it received since.
//
// An id of today's form (eventID) names its answer: the client has that
// answer up to the id's cursors, or all of it (done). When it is the
// answer the URL names, the later of the two cursors is taken, each on its
// own (cursors of one answer only grow). On a stream that carries later
// answers (laterAnswers: GET /api/events) the header's answer is taken
// when it is another one, the client being past the URL's: it is resumed
// exactly, or after its done the stream just follows the conversation.
// On a stream of one answer, a header of another answer is not of this
// stream and is ignored, and after the answer's done over is true: there
// is nothing left to send.
//
// An id of the old form, the cursors alone, is read as before: when both
// come and sameAnswer says the header's events are of the answer the URL's
// cursor is for, the later of the two is taken; when sameAnswer cannot say
// so, the URL's cursor is. A Last-Event-ID that is not an event id is a
// 400 when it is the only cursor, and is ignored beside the URL's.
func resumeRequest(c *gin.Context, convID string, laterAnswers bool, sameAnswer func(hub.SubscribeRequest) bool) (req hub.SubscribeRequest, over bool, err error) {
	if req, err = urlCursor(c, convID); err != nil {
		return req, false, err
	}
	id := c.GetHeader("Last-Event-ID")
	if id == "" {
		return req, false, nil
	}
	ev, err := parseLastEventID(id)
	inURL := req.LastSeq != nil || req.LastReasoningSeq != nil
	switch {
	case err != nil && !inURL:
		return req, false, httperr.InvalidField("Last-Event-ID", "must be <messageId>:<seq>[/<rseq>], <messageId>:done or <seq>[/<rseq>]")
	case err != nil: // the URL's cursor stands
	case ev.messageID != "":
		req, over = resumeNamed(req, ev, laterAnswers)
	case !inURL:
		req.LastSeq, req.LastReasoningSeq = &ev.seq, ev.rseq
	case sameAnswer(req):
		req.LastSeq, req.LastReasoningSeq = later(req.LastSeq, &ev.seq), later(req.LastReasoningSeq, ev.rseq)
	}
	return req, over, nil
}

// resumeNamed is resumeRequest for a Last-Event-ID that names its answer.
func resumeNamed(req hub.SubscribeRequest, ev lastEvent, laterAnswers bool) (hub.SubscribeRequest, bool) {
	same := req.MessageID == ev.messageID
	switch {
	case !same && req.MessageID != "" && !laterAnswers:
		return req, false // another stream's id: the URL stands
	case ev.done && laterAnswers:
		// The client has all of that answer: follow the conversation
		// (a later answer running now is sent from its start).
		return hub.SubscribeRequest{ConversationID: req.ConversationID}, false
	case ev.done:
		req.MessageID = ev.messageID
		return req, true
	case !same:
		req.MessageID, req.LastSeq, req.LastReasoningSeq = ev.messageID, &ev.seq, ev.rseq
	default:
		req.LastSeq, req.LastReasoningSeq = later(req.LastSeq, &ev.seq), later(req.LastReasoningSeq, ev.rseq)
	}
	return req, false
}

// urlCursor reads the URL's messageId, lastSeq and lastReasoningSeq into a
// request to subscribe to convID; a malformed one is a 400 naming it.
func urlCursor(c *gin.Context, convID string) (hub.SubscribeRequest, error) {
	req := hub.SubscribeRequest{ConversationID: convID, MessageID: c.Query("messageId")}
	if req.MessageID != "" && !persistence.ValidID(req.MessageID) {
		return req, httperr.InvalidField("messageId", "is not a valid id")
	}
	return req, queryCursor(c, &req)
}

// queryCursor reads lastSeq and lastReasoningSeq from the URL into req.
func queryCursor(c *gin.Context, req *hub.SubscribeRequest) error {
	for _, q := range []struct {
		name string
		dst  **int64
	}{{"lastSeq", &req.LastSeq}, {"lastReasoningSeq", &req.LastReasoningSeq}} {
		v := c.Query(q.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return httperr.InvalidField(q.name, "must be a non-negative integer")
		}
		*q.dst = &n
	}
	return nil
}

// later returns the larger of two cursors of one answer; nil is none.
func later(a, b *int64) *int64 {
	if a == nil || b != nil && *b > *a {
		return b
	}
	return a
}

// request checks the caller, the conversation id and the user's frame
// budget, and returns who calls. A send or regenerate spends the user's
// send budget once its body is read and valid (a send's tells whether it
// is a retry, which spends nothing).
func (h *Handler) request(c *gin.Context) (who auth.Identity, convID string, ok bool) {
	who, _ = auth.IdentityFrom(c)
	convID = c.Param("id")
	if !persistence.ValidID(convID) {
		httperr.AbortError(c, httperr.BadRequest("malformed conversation id"))
		return auth.Identity{}, "", false
	}
	if perr := h.opts.Limits.AllowFrame(who.UserID); perr != nil {
		httperr.AbortError(c, httperr.RateLimited(perr.Message, 10*time.Second))
		return auth.Identity{}, "", false
	}
	return who, convID, true
}

// spendSend spends one of the user's sends per minute, or answers 429.
func (h *Handler) spendSend(c *gin.Context, userID string) (limits.Spent, bool) {
	spent, r := h.opts.Limits.SpendSend(userID, false)
	if r != nil {
		httperr.AbortError(c, httperr.RateLimited(r.Err.Message, 10*time.Second))
		return limits.Spent{}, false
	}
	return spent, true
}

// startSpent is start for a request that spent the user's budgets
// (spent): they are given back when the request does not reach the hub
// (its session ended, no stream could be opened), when the hub refuses or
// fails it (limits.Spent.GiveOn: a conversation busy with an answer, an
// unknown or another user's conversation alike, a store that failed), or
// when the hub found its clientMessageId stored (hub.Result.Repeated),
// since no answer started.
func (h *Handler) startSpent(c *gin.Context, who auth.Identity, spent limits.Spent,
	do func(context.Context, hub.Subscriber) (hub.Result, error),
) {
	ran := false
	h.start(c, who, func(ctx context.Context, sub hub.Subscriber) (hub.Result, error) {
		ran = true
		res, err := do(ctx, sub)
		if err == nil && res.Repeated {
			// Its clientMessageId was stored meanwhile (a copy that reached
			// another instance at the same instant): nothing started.
			spent.Give()
		}
		return res, spent.GiveOn(err)
	})
	if !ran {
		spent.Give()
	}
}

// claimSend waits, within RequestTimeout, for a send of the user with
// the same client message id being handled (limits.Users.ClaimSend), and
// claims the id; it answers 503 when the wait runs out.
func (h *Handler) claimSend(c *gin.Context, userID, clientMessageID string) (release func(), ok bool) {
	ctx, cancel := reqtimeout.Bound(c.Request.Context(), h.opts.RequestTimeout)
	defer cancel()
	release, err := h.opts.Limits.ClaimSend(ctx, userID, clientMessageID)
	if err != nil {
		httperr.AbortError(c, httperr.Unavailable("an earlier copy of this message is still being handled; retry", err))
		return nil, false
	}
	return release, true
}

// stored reports which kind of request of the user stored a message with
// clientMessageID already (SentBefore, within RequestTimeout): when the
// same kind, the request is a retry. A store that cannot tell counts as a
// new send (the budget holds).
func (h *Handler) stored(ctx context.Context, userID, clientMessageID string) hub.Stored {
	if clientMessageID == "" || h.opts.SentBefore == nil {
		return hub.StoredNone
	}
	ctx, cancel := reqtimeout.Bound(ctx, h.opts.RequestTimeout)
	defer cancel()
	stored, err := h.opts.SentBefore(ctx, userID, clientMessageID)
	if err != nil {
		h.log.Warn("look up a client message id", "user", userID, "err", err)
		return hub.StoredNone
	}
	return stored
}

// start begins an answer with do and streams it, or answers 202 with the
// new ids when the client does not accept an event stream, or when the
// user has no connection slot left for one: the answer's frames reach the
// user's event streams all the same (a tab on SSE follows its
// conversation with GET /api/events), the request's own stream is only a
// convenience, and a tab that holds the last slot must still be able to
// send. The request's body has been read: the session is checked again
// first (by open, after registering, for a stream), since a logout may
// have landed while a slow body arrived, up to the server's body read
// timeout after the request was authenticated.
func (h *Handler) start(c *gin.Context, who auth.Identity, do func(context.Context, hub.Subscriber) (hub.Result, error)) {
	ctx, cancel := reqtimeout.Bound(c.Request.Context(), h.opts.RequestTimeout)
	defer cancel()
	if !AcceptsEvents(c.Request) || !h.opts.Limits.AcquireConn(who.UserID) {
		h.accept(ctx, c, who, do)
		return
	}
	s, err := h.opened(c.Request.Context(), who)
	if err != nil {
		httperr.AbortError(c, err)
		return
	}
	defer h.close(s)
	res, err := do(ctx, s)
	if err != nil {
		httperr.AbortError(c, statusOf(err))
		return
	}
	if res.MessageID == "" { // a repeated send whose answer is gone: nothing to follow
		h.pump(c, s, "")
		return
	}
	h.pump(c, s, res.MessageID)
}

// accept begins an answer with do, for no stream, once the session is
// checked again, and answers 202 with the new ids (and the model replaced,
// as the ack says it: docs/protocol.md). Once Shutdown has begun it is
// refused 503, as a stream that cannot open is: the client sends it again
// to an instance that is not going away.
func (h *Handler) accept(ctx context.Context, c *gin.Context, who auth.Identity,
	do func(context.Context, hub.Subscriber) (hub.Result, error),
) {
	h.mu.Lock()
	closing := h.closing
	h.mu.Unlock()
	if closing {
		httperr.AbortError(c, httperr.Unavailable(shuttingDown, nil))
		return
	}
	if err := h.confirmSession(ctx, who, "before starting an answer"); err != nil {
		httperr.AbortError(c, err)
		return
	}
	res, err := do(ctx, nil)
	if err != nil {
		httperr.AbortError(c, statusOf(err))
		return
	}
	body := gin.H{"conversationId": res.ConversationID, "userMessageId": res.UserMessageID, "messageId": res.MessageID}
	if res.ReplacedModel != "" {
		body["replacedModel"], body["model"] = res.ReplacedModel, res.Model
	}
	c.JSON(http.StatusAccepted, body)
}

// AcceptsEvents reports whether r asks for an event stream: one of its
// Accept lines lists text/event-stream (in any case, whatever its
// parameters). A send or regenerate that does is streamed; one that does
// not is answered 202.
func AcceptsEvents(r *http.Request) bool {
	return headers.HasToken(r.Header, "Accept", "text/event-stream")
}

// statusOf maps hub errors to HTTP errors; a call that ran out of its
// time (a store that does not answer) is a 503.
func statusOf(err error) error {
	var pe *protocol.Error
	if errors.Is(err, context.DeadlineExceeded) {
		return httperr.Unavailable("the server did not answer in time; retry", err)
	}
	if !errors.As(err, &pe) {
		return err
	}
	status := map[string]int{
		protocol.CodeUnauthorized:      http.StatusUnauthorized, // hub.ErrSessionEnded: as for a revoked token
		protocol.CodeNotFound:          http.StatusNotFound,
		protocol.CodeGenerationRunning: http.StatusConflict,
		protocol.CodeRateLimited:       http.StatusTooManyRequests,
		protocol.CodeUnavailable:       http.StatusServiceUnavailable,
		protocol.CodeInternal:          http.StatusInternalServerError,
	}[pe.Code]
	if status == 0 {
		status = http.StatusBadRequest
	}
	e := httperr.New(status, pe.Code, pe.Message)
	if status == http.StatusUnauthorized {
		e = httperr.InvalidToken(pe.Message) // the session ended: its token is no longer good
	}
	// As every 429 and 503 of the API, they say when to come back.
	switch status {
	case http.StatusTooManyRequests:
		e.RetryAfter = 10 * time.Second
	case http.StatusServiceUnavailable:
		e.RetryAfter = time.Second
	}
	return e
}
