package sse

import (
	"errors"
	"strings"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// doneMark ends the event id of a done frame.
const doneMark = "done"

// eventID is the SSE id of a delta, reasoning or done frame: the answer's
// message id and its cursors, "<messageId>:<seq>" or, once the answer has
// reasoning, "<messageId>:<seq>/<rseq>", and "<messageId>:done" for its
// done. The Last-Event-ID a client sends back with it names the answer as
// well as the position: a stream that carries several answers (GET
// /api/events) resumes the one the client was in, exactly, even when it is
// not the one the URL names. (Before, the id was the cursor alone,
// "<seq>[/<rseq>]", which parseLastEventID still reads.)
func eventID(f *protocol.Frame) string {
	if f.Type == protocol.TypeDone {
		return f.MessageID + ":" + doneMark
	}
	return f.MessageID + ":" + f.EventID()
}

// lastEvent is what a Last-Event-ID says of the client's position.
type lastEvent struct {
	messageID string // "" for an id of the old form, the cursor alone
	seq       int64
	rseq      *int64
	done      bool // the client has the answer's done: all of it
}

// errEventID refuses a Last-Event-ID that is none of ours.
var errEventID = errors.New("Last-Event-ID is not <messageId>:<seq>[/<rseq>], <messageId>:done or <seq>[/<rseq>]")

// parseLastEventID reads an id of eventID's form, or of the old one.
func parseLastEventID(id string) (lastEvent, error) {
	var ev lastEvent
	msg, cursor, named := strings.Cut(id, ":")
	if !named {
		cursor = id
	} else if ev.messageID = msg; !persistence.ValidID(msg) {
		return lastEvent{}, errEventID
	}
	if named && cursor == doneMark {
		ev.done = true
		return ev, nil
	}
	seq, rseq, err := protocol.ParseEventID(cursor)
	if err != nil {
		return lastEvent{}, errEventID
	}
	ev.seq, ev.rseq = seq, rseq
	return ev, nil
}
