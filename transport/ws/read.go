package ws

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/httperr"
	"chatd/transport/limits"
)

// readLoop reads client frames until the peer leaves or the connection is
// closed. It answers what needs no hub (pings, invalid frames) itself and
// hands the rest to the worker without waiting: it is always reading, so
// pongs and close frames are noticed even while the hub is slow.
//
// The read is given no context to end it: a cancellable one would make the
// library register a callback on it for every read, held for as long as an
// idle connection waits. The socket closing ends the read instead, and
// whatever ends the connection closes the socket: the writer on its way
// out (also when the context ends), a failed ping, Shutdown.
func (c *conn) readLoop() {
	abuse := newRefusals(c.h.opts.MaxInvalidFrames)
	for {
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.noteReadEnd(err)
			return
		}
		if c.closing() {
			continue // read on until the socket closes, but run nothing more
		}
		if typ != websocket.MessageText {
			c.refuse(nil, protocol.Errorf(protocol.CodeBadFrame, "binary frames are not accepted; send JSON text"), abuse)
			continue
		}
		if !utf8.Valid(data) {
			// Decoded, its bytes would reach the hub replaced by U+FFFD,
			// and an id's be echoed raw: a text frame that is not UTF-8.
			c.refuse(nil, protocol.Errorf(protocol.CodeBadFrame, "a text frame must be valid UTF-8"), abuse)
			continue
		}
		f, perr := protocol.DecodeClient(data)
		if perr == nil {
			var field string
			if perr, field = notText(data); field == "id" {
				f.ID = nil // not echoed: the id holds the lone half
			}
		}
		if perr != nil {
			c.refuse(f.ID, perr, abuse)
			continue
		}
		if rerr := c.h.opts.Limits.AllowFrame(c.userID); rerr != nil {
			c.refuse(f.ID, rerr, abuse)
			continue
		}
		if f.Type == protocol.TypePing {
			c.Deliver(protocol.Pong(f.ID))
			continue
		}
		c.startWorker(abuse)
		select {
		case c.work <- &f:
		default:
			c.refuse(f.ID, protocol.Errorf(protocol.CodeRateLimited, "too many frames waiting for an answer; wait for the acks"), abuse)
		}
	}
}

// notText refuses a frame holding the escape of half a surrogate pair
// alone ("\ud800"), which decoding took as U+FFFD, as it refuses a frame
// that is not UTF-8: invalid_field naming the field, or bad_frame when a
// key holds it. field is the field named.
func notText(data []byte) (perr *protocol.Error, field string) {
	field, problem, bad := httperr.LoneSurrogate(data)
	switch {
	case !bad:
		return nil, ""
	case field != "":
		return protocol.Errorf(protocol.CodeInvalidField, "%s %s", field, problem), field
	}
	return protocol.Errorf(protocol.CodeBadFrame, "a frame %s", problem), ""
}

// startWorker starts the worker the first time a frame needs it, counting
// its refusals in abuse with the reader's. Only the reader calls it.
func (c *conn) startWorker(abuse *refusals) {
	if c.work != nil {
		return
	}
	c.work = make(chan *protocol.ClientFrame, c.h.opts.MaxPendingFrames)
	c.helpers.Go(func() {
		defer c.cancel()
		c.workLoop(abuse)
	})
}

// workLoop runs the frames the reader handed over, one at a time and in
// order, until the connection ends. Once the connection is being closed
// (kick: a session ended, a slow client, shutdown), the frames still
// waiting are dropped: none is run for a connection on its way out.
func (c *conn) workLoop(abuse *refusals) {
	for {
		select {
		case <-c.ctx.Done():
			return
		case f := <-c.work:
			if c.closing() {
				continue // a frame behind the one that closed the connection
			}
			if err := c.dispatch(*f, abuse); err != nil && !errors.Is(err, errAnswered) {
				c.fail(*f, err)
			}
		}
	}
}

// refuse answers an invalid or over-limit frame and closes a connection
// that keeps sending them: invalid frames with 1008, frames refused for a
// rate limit with 4429, each counted on its own.
func (c *conn) refuse(id []byte, e *protocol.Error, abuse *refusals) {
	c.Deliver(protocol.ErrorFrame(id, e))
	abuse.mu.Lock()
	defer abuse.mu.Unlock()
	switch {
	case e.Code == protocol.CodeRateLimited:
		if abuse.limited.hit(time.Now()) {
			c.kick(protocol.CloseRateLimited, ReasonRateLimited)
		}
	case abuse.invalid.hit(time.Now()):
		c.kick(protocol.ClosePolicy, ReasonInvalidFrames)
	}
}

// refusals counts a connection's refused frames of each kind over the
// last minute, for the reader and the worker (send budgets).
type refusals struct {
	mu               sync.Mutex
	invalid, limited *strikes
}

func newRefusals(limit int) *refusals {
	return &refusals{invalid: newStrikes(limit, time.Minute), limited: newStrikes(limit, time.Minute)}
}

// noteReadEnd records why the read ended: a client frame over ReadLimit
// (the library has sent 1009 already), or the client's close frame,
// whatever its code, 1009 included (the client refused a frame of ours
// as too big: it is the client's close, not a frame this server refused).
// Any other end (the peer vanished, broke the protocol, or the socket was
// closed under the read) is kept in readErr for the close's log line.
func (c *conn) noteReadEnd(err error) {
	status := websocket.CloseStatus(err)
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig):
		c.kick(protocol.CloseTooBig, ReasonFrameTooLarge)
	case status != -1:
		c.kick(protocol.CloseCode(status), ReasonClosedByClient)
	default:
		c.readErr = err
	}
}

// Reasons logged for a connection whose read ended.
const (
	// ReasonFrameTooLarge: the client sent a frame over ReadLimit (1009).
	ReasonFrameTooLarge = "frame too large"
	// ReasonClosedByClient: the client sent a close frame.
	ReasonClosedByClient = "closed by the client"
	// ReasonNoCloseFrame: the connection ended with no close frame either
	// way (logged with 1006, as RFC 6455 reports such an end): the peer
	// vanished, or the server dropped it (a write or ping timeout, each
	// logged on its own).
	ReasonNoCloseFrame = "ended without a close frame"
)

// dispatch runs one valid client frame; a send refused for the user's
// budget counts in abuse.
func (c *conn) dispatch(f protocol.ClientFrame, abuse *refusals) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.h.opts.DispatchTimeout)
	defer cancel()
	hb := c.h.opts.Hub
	if follows(f.Type) && !c.roomToFollow(f.ConversationID) {
		return c.errFollowsFull()
	}
	if f.Type == protocol.TypeSend || f.Type == protocol.TypeRegenerate {
		// A copy of this send or regenerate being handled (another tab, a
		// retry racing its original) is waited for: this one then finds
		// it stored and spends no budget (admit).
		release, err := c.h.opts.Limits.ClaimSend(ctx, c.userID, f.ClientMessageID)
		if err != nil {
			return err
		}
		defer release()
	}
	spent, stored, err := c.admit(ctx, f, abuse)
	if err != nil {
		return err
	}
	switch f.Type {
	case protocol.TypeSend:
		res, err := hb.Send(ctx, c, c.userID, hub.SendRequest{FrameID: f.ID, ConnectionID: c.id,
			ConversationID: f.ConversationID, Content: *f.Content, ClientMessageID: f.ClientMessageID,
			ParentMessageID: f.ParentMessageID, Model: f.Model, Stored: stored})
		c.noteAnswered(f, res, err)
		return settle(spent, res, err)
	case protocol.TypeRegenerate:
		res, err := hb.Regenerate(ctx, c, c.userID, hub.RegenerateRequest{FrameID: f.ID, ConnectionID: c.id,
			ConversationID: f.ConversationID, MessageID: f.MessageID, Model: f.Model, ClientMessageID: f.ClientMessageID,
			Stored: stored})
		c.noteAnswered(f, res, err)
		return settle(spent, res, err)
	case protocol.TypeCancel:
		if err := hb.CancelAnswer(ctx, c.userID, f.ConversationID, f.MessageID); err != nil {
			return err
		}
	case protocol.TypeSubscribe:
		err := hb.Subscribe(ctx, c, c.userID, hub.SubscribeRequest{FrameID: f.ID,
			ConversationID: f.ConversationID, MessageID: f.MessageID, LastSeq: f.LastSeq,
			LastReasoningSeq: f.LastReasoningSeq})
		c.noteFollowed(f.ConversationID, err)
		return err
	case protocol.TypeUnsubscribe:
		hb.Unsubscribe(c, f.ConversationID)
		c.unfollowed(f.ConversationID)
	}
	c.Deliver(protocol.Ack(f.ID))
	return nil
}

// settle gives back what a send or regenerate spent when it started no
// answer: the hub refused or failed it (limits.Spent.GiveOn), or found its
// clientMessageId stored (a copy that reached another instance at the same
// instant and was stored first, which ClaimSend does not order). It
// returns err.
func settle(spent limits.Spent, res hub.Result, err error) error {
	if err == nil && res.Repeated {
		spent.Give()
	}
	return spent.GiveOn(err)
}

// admit checks what a frame that stores something needs before the hub
// sees it: a session still valid, and unless it is a retried send or
// regenerate (its clientMessageId stored by the same kind of request),
// the user's budget of sends and, for a send that creates a conversation,
// of new conversations (both or neither), which it returns as spent, with
// what the key was found to be (for the hub). A frame
// refused for the send budget is answered here and counts in abuse, as the
// reader's refusals for a rate limit do.
func (c *conn) admit(ctx context.Context, f protocol.ClientFrame, abuse *refusals) (limits.Spent, hub.Stored, error) {
	if f.Type != protocol.TypeSend && f.Type != protocol.TypeRegenerate {
		return limits.Spent{}, hub.StoredNone, nil
	}
	if err := c.recheck(ctx, f.ID); err != nil {
		return limits.Spent{}, hub.StoredNone, err
	}
	stored := c.stored(ctx, f.ClientMessageID)
	if stored.Retries(f.Type == protocol.TypeRegenerate) {
		return limits.Spent{}, stored, nil // the hub answers it with what the first one stored
	}
	spent, r := c.h.opts.Limits.SpendSend(c.userID, f.Type == protocol.TypeSend && f.ConversationID == "")
	switch {
	case r == nil:
		return spent, stored, nil
	case r.Conversations:
		return limits.Spent{}, stored, r.Err
	}
	c.refuse(f.ID, r.Err, abuse)
	return limits.Spent{}, stored, errAnswered
}

// stored reports which kind of request stored a send's or regenerate's
// client message id already: when the same kind, the frame is a retry (a
// lost ack, a reconnect), which the hub answers with what the first one
// stored, and which must not spend the user's budgets again. A store
// that cannot tell counts as a new send (the budget holds). Two copies of
// a send arriving at the same instant are handled one after the other
// (dispatch, limits.Users.ClaimSend), so the second finds the first
// stored; on two instances of a cluster both may spend, though the hub
// stores one.
func (c *conn) stored(ctx context.Context, clientMessageID string) hub.Stored {
	if clientMessageID == "" || c.h.opts.SentBefore == nil {
		return hub.StoredNone
	}
	stored, err := c.h.opts.SentBefore(ctx, c.userID, clientMessageID)
	if err != nil {
		c.h.log.Warn("look up a client message id", "connection", c.id, "err", err)
		return hub.StoredNone
	}
	return stored
}

// errAnswered is returned by a frame's handling that already answered it.
var errAnswered = errors.New("frame already answered")

// reasonSessionEnded is the close reason (with 4401) of a connection whose
// session a recheck found revoked, expired or its account removed.
const reasonSessionEnded = "signed out or account removed"

// recheck checks the connection's session again before work that stores
// something: an account deleted or signed out since the upgrade is
// refused, and its connection closed with 4401.
func (c *conn) recheck(ctx context.Context, frameID json.RawMessage) error {
	err := c.h.opts.Recheck(ctx, Identity{UserID: c.userID, TokenVersion: c.tv, ExpiresAt: c.expires})
	switch {
	case errors.Is(err, ErrUnauthorized):
		c.endSession(frameID, reasonSessionEnded)
		return errAnswered
	case err != nil:
		c.h.log.Warn("recheck websocket token", "connection", c.id, "err", err)
		return protocol.Errorf(protocol.CodeUnavailable, "cannot check the session right now; retry")
	}
	return nil
}

// endSession answers a frame of a session that has ended (a revoked
// token, a deleted account) and closes the connection with 4401 and
// reason.
func (c *conn) endSession(frameID json.RawMessage, reason string) {
	// The error is queued before the close, which then writes it first.
	c.Deliver(protocol.ErrorFrame(frameID, hub.ErrSessionEnded))
	c.kick(protocol.CloseUnauthorized, reason)
}

// fail answers a frame whose handling failed. A hub error saying the
// session has ended (code unauthorized: the account was deleted while the
// frame was handled, after its recheck) is answered as recheck answers a
// revoked token, with the close reason of the hub's own close of a
// deleted account's connections, on which the client forgets the user's
// drafts too: whichever close reaches the socket first, it says the same.
func (c *conn) fail(f protocol.ClientFrame, err error) {
	pe := c.protocolError(f, err)
	if pe.Code == protocol.CodeUnauthorized {
		c.endSession(f.ID, protocol.ReasonAccountDeleted)
		return
	}
	c.Deliver(protocol.ErrorFrame(f.ID, pe))
}

// protocolError turns a hub error into what the client is told: a frame
// out of time, or one the database could not take now
// (persistence.ErrUnavailable), is unavailable; server failures are
// logged and reported as internal.
func (c *conn) protocolError(f protocol.ClientFrame, err error) *protocol.Error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, context.Canceled) && c.ctx.Err() != nil {
		return protocol.Errorf(protocol.CodeUnavailable, "connection closing")
	}
	if errors.Is(err, context.DeadlineExceeded) && c.ctx.Err() == nil {
		// Out of DispatchTimeout: a store that does not answer.
		c.h.log.Warn("websocket frame out of time", "connection", c.id, "type", f.Type, "err", err)
		return protocol.Errorf(protocol.CodeUnavailable, "the server did not answer in time; retry")
	}
	if errors.Is(err, persistence.ErrUnavailable) {
		// A full disk, a lock another process holds: /readyz says so.
		c.h.log.Warn("websocket frame refused: the database cannot take it now", "connection", c.id, "user", c.userID, "type", f.Type, "err", err)
		return protocol.Errorf(protocol.CodeUnavailable, "%s", httperr.MessageStoreUnavailable)
	}
	c.h.log.Error("websocket frame failed", "connection", c.id, "user", c.userID, "type", f.Type, "err", err)
	return protocol.Errorf(protocol.CodeInternal, "the server could not handle this frame (connection %s)", c.id)
}

// Close reasons of a connection that keeps sending frames that are refused.
const (
	// ReasonInvalidFrames closes (1008) a connection that sent more than
	// MaxInvalidFrames invalid frames in a minute.
	ReasonInvalidFrames = "too many invalid frames"
	// ReasonRateLimited closes (4429) a connection that sent more than
	// MaxInvalidFrames frames in a minute refused as over a rate limit.
	ReasonRateLimited = "rate limit exceeded repeatedly"
)
