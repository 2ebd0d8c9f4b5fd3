package ws

import (
	"errors"

	"chatd/hub"
	"chatd/hub/protocol"
)

// errFollowsFull refuses a frame that would make a connection follow more
// than MaxFollowed conversations.
func (c *conn) errFollowsFull() *protocol.Error {
	return protocol.Errorf(protocol.CodeRateLimited,
		"this connection follows %d conversations, the most it may; unsubscribe from one first", c.h.opts.MaxFollowed)
}

// roomToFollow reports whether a subscribe, send or regenerate naming
// convID ("" for a send that creates its conversation) may reach the hub,
// which makes the connection follow that conversation: it follows it
// already, or follows fewer than MaxFollowed. Only the worker calls it.
func (c *conn) roomToFollow(convID string) bool {
	if _, ok := c.followed[convID]; ok && convID != "" {
		return true
	}
	return len(c.followed) < c.h.opts.MaxFollowed
}

// noteFollowed records that the hub may now make the connection follow
// convID, after a frame naming it was handled with err: every outcome
// but not_found (the hub follows nothing it does not find) counts, since
// the hub follows a conversation before it refuses some frames (an answer
// already running). Counting one the hub did not follow only brings the
// bound nearer; unsubscribe forgets it.
func (c *conn) noteFollowed(convID string, err error) {
	var pe *protocol.Error
	if convID == "" || errors.As(err, &pe) && pe.Code == protocol.CodeNotFound {
		return
	}
	if c.followed == nil {
		c.followed = make(map[string]struct{})
	}
	c.followed[convID] = struct{}{}
}

// unfollowed forgets convID after an unsubscribe.
func (c *conn) unfollowed(convID string) { delete(c.followed, convID) }

// follows reports whether a frame of type typ makes the connection follow
// the conversation it names.
func follows(typ string) bool {
	return typ == protocol.TypeSubscribe || typ == protocol.TypeSend || typ == protocol.TypeRegenerate
}

// noteAnswered records what a send or regenerate f, answered with res and
// err, may have made the connection follow: the conversation it named,
// and the one it created.
func (c *conn) noteAnswered(f protocol.ClientFrame, res hub.Result, err error) {
	c.noteFollowed(f.ConversationID, err)
	if err == nil {
		c.noteFollowed(res.ConversationID, nil)
	}
}
