package ws

import (
	"context"
	"errors"
	"time"

	"github.com/coder/websocket"

	"chatd/hub"
	"chatd/hub/protocol"
)

// readLoop reads client frames and dispatches them, one at a time, until
// the peer leaves or the connection is closed.
func (c *conn) readLoop() {
	abuse := newStrikes(c.h.opts.MaxInvalidFrames, time.Minute)
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			c.noteReadEnd(err)
			return
		}
		if typ != websocket.MessageText {
			c.refuse(nil, protocol.Errorf(protocol.CodeBadFrame, "binary frames are not accepted; send JSON text"), abuse)
			continue
		}
		f, perr := protocol.DecodeClient(data)
		if perr != nil {
			c.refuse(f.ID, perr, abuse)
			continue
		}
		if rerr := c.h.opts.Limits.AllowFrame(c.userID, f.Type); rerr != nil {
			c.refuse(f.ID, rerr, abuse)
			continue
		}
		if err := c.dispatch(f); err != nil {
			c.Deliver(protocol.ErrorFrame(f.ID, c.protocolError(f, err)))
		}
	}
}

// refuse answers an invalid or over-limit frame and closes a connection
// that keeps sending them.
func (c *conn) refuse(id []byte, e *protocol.Error, abuse *strikes) {
	c.Deliver(protocol.ErrorFrame(id, e))
	if abuse.hit(time.Now()) {
		code := protocol.ClosePolicy
		if e.Code == protocol.CodeRateLimited {
			code = protocol.CloseRateLimited
		}
		c.kick(code, "too many invalid frames")
	}
}

func (c *conn) noteReadEnd(err error) {
	status := websocket.CloseStatus(err)
	switch {
	case status == websocket.StatusMessageTooBig || errors.Is(err, websocket.ErrMessageTooBig):
		c.kick(protocol.CloseTooBig, "frame too large")
	case status != -1:
		c.kick(protocol.CloseCode(status), "closed by the client")
	}
}

// dispatch runs one valid client frame.
func (c *conn) dispatch(f protocol.ClientFrame) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.h.opts.DispatchTimeout)
	defer cancel()
	hb := c.h.opts.Hub
	switch f.Type {
	case protocol.TypePing:
		c.Deliver(protocol.Pong(f.ID))
		return nil
	case protocol.TypeSend:
		_, err := hb.Send(ctx, c, c.userID, hub.SendRequest{FrameID: f.ID, ConnectionID: c.id,
			ConversationID: f.ConversationID, Content: *f.Content, ClientMessageID: f.ClientMessageID,
			ParentMessageID: f.ParentMessageID, Model: f.Model})
		return err
	case protocol.TypeRegenerate:
		_, err := hb.Regenerate(ctx, c, c.userID, hub.RegenerateRequest{FrameID: f.ID, ConnectionID: c.id,
			ConversationID: f.ConversationID, MessageID: f.MessageID, Model: f.Model})
		return err
	case protocol.TypeCancel:
		if err := hb.Cancel(ctx, c.userID, f.ConversationID); err != nil {
			return err
		}
	case protocol.TypeSubscribe:
		return hb.Subscribe(ctx, c, c.userID, hub.SubscribeRequest{FrameID: f.ID,
			ConversationID: f.ConversationID, MessageID: f.MessageID, LastSeq: f.LastSeq,
			LastReasoningSeq: f.LastReasoningSeq})
	case protocol.TypeUnsubscribe:
		hb.Unsubscribe(c, f.ConversationID)
	}
	c.Deliver(protocol.Ack(f.ID))
	return nil
}

// protocolError turns a hub error into what the client is told; server
// failures are logged and reported as internal.
func (c *conn) protocolError(f protocol.ClientFrame, err error) *protocol.Error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, context.Canceled) && c.ctx.Err() != nil {
		return protocol.Errorf(protocol.CodeUnavailable, "connection closing")
	}
	c.h.log.Error("websocket frame failed", "connection", c.id, "user", c.userID, "type", f.Type, "err", err)
	return protocol.Errorf(protocol.CodeInternal, "the server could not handle this frame (connection %s)", c.id)
}
