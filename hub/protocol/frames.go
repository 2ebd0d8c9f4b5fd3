package protocol

import (
	"encoding/json"
	"time"

	"chatd/persistence"
)

// Frame is one encoded server frame. It is encoded once and the same bytes
// go to every subscriber, whatever the transport.
type Frame struct {
	Type           string
	ConversationID string
	MessageID      string // the answer a delta or done belongs to
	Seq            int64  // resume cursor of a delta or done (in the SSE id, see EventID)
	RSeq           int64  // reasoning cursor of a reasoning, delta or done frame (see EventID)
	Data           []byte // the JSON object, without a trailing newline
	// rec is the recycled frame f is, when it is one (Frames.DeltaAt),
	// for Release; nil otherwise.
	rec *recycled
}

// IsDone reports whether f is the done frame of the answer messageID.
func (f *Frame) IsDone(messageID string) bool {
	return f.Type == TypeDone && f.MessageID == messageID
}

// Usage is the token accounting carried by done frames.
type Usage = persistence.Usage

// ErrorBody is the structured error inside a done frame.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type helloFrame struct {
	Type          string `json:"type"`
	Protocol      string `json:"protocol"`
	UserID        string `json:"userId"`
	ConnectionID  string `json:"connectionId"`
	MaxFrameBytes int64  `json:"maxFrameBytes"`
	Session       string `json:"session"`
}

type ackFrame struct {
	Type           string          `json:"type"`
	ID             json.RawMessage `json:"id,omitempty"`
	ConversationID string          `json:"conversationId,omitempty"`
	UserMessageID  string          `json:"userMessageId,omitempty"`
	MessageID      string          `json:"messageId,omitempty"`
	// ReplacedModel and Model, set together, say that the answer does not
	// come from the conversation's model, which is no longer offered,
	// but from Model instead (see AckReplaced).
	ReplacedModel string `json:"replacedModel,omitempty"`
	Model         string `json:"model,omitempty"`
}

type conversationFrame struct {
	Type         string                   `json:"type"`
	Action       string                   `json:"action"`
	Conversation persistence.Conversation `json:"conversation"`
}

type messageFrame struct {
	Type           string              `json:"type"`
	ConversationID string              `json:"conversationId"`
	Message        persistence.Message `json:"message"`
}

type deltaFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversationId"`
	MessageID      string `json:"messageId"`
	Seq            int64  `json:"seq"`
	Text           string `json:"text"`
}

type doneFrame struct {
	Type           string     `json:"type"`
	ConversationID string     `json:"conversationId"`
	MessageID      string     `json:"messageId"`
	Seq            int64      `json:"seq"`
	RSeq           int64      `json:"rseq,omitempty"`
	Omitted        *int       `json:"omittedMessages,omitempty"` // absent: none, or as the message frame said
	Status         string     `json:"status"`
	FinishReason   string     `json:"finishReason,omitempty"`
	Usage          *Usage     `json:"usage,omitempty"`
	Error          *ErrorBody `json:"error,omitempty"`
}

type errorFrame struct {
	Type    string          `json:"type"`
	ID      json.RawMessage `json:"id,omitempty"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
}

type pongFrame struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id,omitempty"`
	Time int64           `json:"time"`
}

type closedFrame struct {
	Type   string    `json:"type"`
	Code   CloseCode `json:"closeCode"`
	Reason string    `json:"reason,omitempty"`
}

func encode(f *Frame, v any) *Frame {
	data, err := json.Marshal(v)
	if err != nil {
		// Every frame type above is plain data; this cannot fail.
		panic("protocol: encode frame: " + err.Error())
	}
	f.Data = data
	return f
}

// SessionConfirmed is hello's session: the server checked the session
// after the upgrade before it sent hello. A hello without it comes from a
// server older than that check-before-hello order, whose hello may still
// be followed by a close for an ended session (4401).
const SessionConfirmed = "confirmed"

// Hello is the first frame of a WebSocket connection, written only once
// the connection's session is confirmed (SessionConfirmed).
func Hello(userID, connectionID string, maxFrameBytes int64) *Frame {
	return encode(&Frame{Type: TypeHello}, helloFrame{TypeHello, Name, userID, connectionID, maxFrameBytes, SessionConfirmed})
}

// Ack accepts the client frame with that id.
func Ack(id json.RawMessage) *Frame {
	return encode(&Frame{Type: TypeAck}, ackFrame{Type: TypeAck, ID: id})
}

// AckSend accepts a send or regenerate frame, naming what it created.
func AckSend(id json.RawMessage, conversationID, userMessageID, messageID string) *Frame {
	return AckReplaced(id, conversationID, userMessageID, messageID, "", "")
}

// AckReplaced is AckSend for an answer that model gives in place of the
// conversation's model replaced, no longer offered ("" for both: none
// replaced), so that the client can tell its user.
func AckReplaced(id json.RawMessage, conversationID, userMessageID, messageID, replaced, model string) *Frame {
	return encode(&Frame{Type: TypeAck, ConversationID: conversationID, MessageID: messageID},
		ackFrame{TypeAck, id, conversationID, userMessageID, messageID, replaced, model})
}

// deletedConversationFrame is the conversation frame of a deletion: the
// id alone, all a client needs to forget the conversation.
type deletedConversationFrame struct {
	Type         string `json:"type"`
	Action       string `json:"action"`
	Conversation struct {
		ID string `json:"id"`
	} `json:"conversation"`
}

// ActionDeleted is the action of the conversation frame of a deletion.
const ActionDeleted = "deleted"

// Conversation tells a user's connections that a conversation was created,
// updated or deleted (action). A deletion carries the conversation's id
// only: what the user deleted (its title, its system prompt) is not sent
// to every tab, nor over NATS to every instance and into the events
// stream.
func Conversation(action string, c persistence.Conversation) *Frame {
	f := &Frame{Type: TypeConversation, ConversationID: c.ID}
	if action == ActionDeleted {
		d := deletedConversationFrame{Type: TypeConversation, Action: action}
		d.Conversation.ID = c.ID
		return encode(f, d)
	}
	return encode(f, conversationFrame{TypeConversation, action, c})
}

// ConversationAction is the action of a conversation frame ("created",
// "updated", ActionDeleted), or "" for any other frame (or one it cannot
// read).
func ConversationAction(f *Frame) string {
	if f.Type != TypeConversation {
		return ""
	}
	var v struct {
		Action string `json:"action"`
	}
	if json.Unmarshal(f.Data, &v) != nil {
		return ""
	}
	return v.Action
}

// Message carries a stored message.
func Message(m persistence.Message) *Frame {
	return encode(&Frame{Type: TypeMessage, ConversationID: m.ConversationID, MessageID: m.ID},
		messageFrame{TypeMessage, m.ConversationID, m})
}

// Delta carries more text of an answer; seq is the answer's length in bytes after it.
func Delta(conversationID, messageID string, seq int64, text string) *Frame {
	return DeltaAt(conversationID, messageID, seq, 0, text)
}

// Done ends an answer. errBody is nil unless the answer failed or was
// interrupted. seq and rseq are the lengths of its text and reasoning;
// omittedMessages is carried when m left messages out of its prompt.
func Done(m persistence.Message, errBody *ErrorBody) *Frame {
	return done(m, errBody, m.OmittedMessages > 0)
}

// DoneRecounted is Done for an answer whose prompt was fitted again after
// its message frame went out, with the count of messages it left out
// recorded again: it carries omittedMessages, 0 included, since the count
// the message frame gave no longer holds.
func DoneRecounted(m persistence.Message, errBody *ErrorBody) *Frame {
	return done(m, errBody, true)
}

func done(m persistence.Message, errBody *ErrorBody, withOmitted bool) *Frame {
	seq, rseq := int64(len(m.Content)), int64(len(m.Reasoning))
	var omitted *int
	if withOmitted {
		omitted = &m.OmittedMessages
	}
	return encode(&Frame{Type: TypeDone, ConversationID: m.ConversationID, MessageID: m.ID, Seq: seq, RSeq: rseq},
		doneFrame{TypeDone, m.ConversationID, m.ID, seq, rseq, omitted, string(m.Status), m.FinishReason, m.Usage, errBody})
}

// ErrorFrame refuses the client frame with that id.
func ErrorFrame(id json.RawMessage, e *Error) *Frame {
	return encode(&Frame{Type: TypeError}, errorFrame{TypeError, id, e.Code, e.Message})
}

// Closed says why the server ends an SSE stream: the code and reason a
// WebSocket's close frame would carry (4401 "signed out" or "account
// deleted", 1001 at shutdown).
func Closed(code CloseCode, reason string) *Frame {
	return encode(&Frame{Type: TypeClosed}, closedFrame{TypeClosed, code, reason})
}

// Pong answers a ping.
func Pong(id json.RawMessage) *Frame {
	return encode(&Frame{Type: TypePong}, pongFrame{TypePong, id, time.Now().UnixMilli()})
}
