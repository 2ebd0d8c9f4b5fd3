// Package protocol defines the frames of the live channel (chat.v1): what a
// client may send, what the server sends, error codes and close codes. The
// same server frames travel over WebSocket text frames and as Server-Sent
// Events. docs/protocol.md is the reader's version of this file.
package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"chatd/persistence"
)

// Name is the WebSocket subprotocol the server speaks.
const Name = "chat.v1"

// Client frame types.
const (
	TypeSend        = "send"
	TypeCancel      = "cancel"
	TypeRegenerate  = "regenerate"
	TypeSubscribe   = "subscribe"
	TypeUnsubscribe = "unsubscribe"
	TypePing        = "ping"
)

// Server frame types.
const (
	TypeHello        = "hello"
	TypeAck          = "ack"
	TypeConversation = "conversation"
	TypeMessage      = "message"
	TypeDelta        = "delta"
	TypeReasoning    = "reasoning"
	TypeDone         = "done"
	TypeError        = "error"
	TypePong         = "pong"
	// TypeClosed is the last event of an SSE stream the server ends for a
	// reason it states (Closed); a WebSocket gets a close frame instead.
	TypeClosed = "closed"
)

// Error codes of error frames (and of the REST errors that mirror them).
const (
	CodeBadFrame          = "bad_frame"
	CodeUnknownType       = "unknown_type"
	CodeInvalidField      = "invalid_field"
	CodeNotFound          = "not_found"
	CodeGenerationRunning = "generation_running"
	CodeBadSeq            = "bad_seq"
	CodeUnknownModel      = "unknown_model"
	CodeRateLimited       = "rate_limited"
	CodeUnauthorized      = "unauthorized" // the session ended (logout, account removed)
	CodeUnavailable       = "unavailable"
	CodeInternal          = "internal"
	// CodeShutdown is the error code of a done frame ended by server shutdown.
	// A stored answer keeps it as its errorCode (persistence.RestartErrorCode).
	CodeShutdown = persistence.RestartErrorCode
)

// CloseCode is a WebSocket close status the server uses.
type CloseCode int

// Close codes, as documented in docs/protocol.md. Codes 4000-4499 are ours.
const (
	CloseNormal        CloseCode = 1000
	CloseGoingAway     CloseCode = 1001 // server shutting down: reconnect with backoff
	ClosePolicy        CloseCode = 1008 // repeated invalid frames: do not reconnect
	CloseTooBig        CloseCode = 1009 // frame over the read limit
	CloseTryAgainLater CloseCode = 1013 // the session cannot be checked now: reconnect with backoff
	CloseUnauthorized  CloseCode = 4401 // token expired or revoked: sign in again
	CloseSlowClient    CloseCode = 4408 // send queue full: reconnect and resume
	CloseRateLimited   CloseCode = 4429 // rate limit exceeded repeatedly
)

// Reasons of a CloseUnauthorized close that a client acts on.
const (
	// ReasonSignedOut: the session was revoked (a logout, here or on
	// another device).
	ReasonSignedOut = "signed out"
	// ReasonAccountDeleted: the account was deleted; the client forgets
	// what it kept of the user.
	ReasonAccountDeleted = "account deleted"
)

// ReasonShutdown is the reason of a CloseGoingAway close: the server is
// stopping (the client reconnects, to another instance in a cluster).
const ReasonShutdown = "server shutting down"

// Limits on client frame fields.
const (
	// MaxContentChars is the longest message content accepted, in characters.
	MaxContentChars = 32000
	maxFrameIDLen   = 64
	// MaxKeyChars is the longest idempotency key (KeyProblem).
	MaxKeyChars = 64
	// MaxModelChars is the longest model name a send or regenerate may
	// give, in characters, as a conversation's model over REST.
	MaxModelChars = 200
)

// ClientFrame is any frame a client sends; which fields matter depends on Type.
type ClientFrame struct {
	Type            string          `json:"type"`
	ID              json.RawMessage `json:"id,omitempty"`
	ConversationID  string          `json:"conversationId,omitempty"`
	Content         *string         `json:"content,omitempty"`
	ClientMessageID string          `json:"clientMessageId,omitempty"`
	// ParentMessageID absent means "after the latest message"; "" means a new root.
	ParentMessageID *string `json:"parentMessageId,omitempty"`
	MessageID       string  `json:"messageId,omitempty"`
	Model           string  `json:"model,omitempty"`
	LastSeq         *int64  `json:"lastSeq,omitempty"`
	// LastReasoningSeq is the reasoning cursor of a resume (see TypeReasoning).
	LastReasoningSeq *int64 `json:"lastReasoningSeq,omitempty"`
}

// Error is a refusal with a protocol error code; it becomes an error frame
// on the socket and a JSON error on HTTP.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// DecodeClient parses and validates one client frame. The returned frame
// carries its ID even when err is not nil, so the error can echo it.
func DecodeClient(data []byte) (ClientFrame, *Error) {
	var f ClientFrame
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return f, Errorf(CodeBadFrame, "a frame must be a JSON object")
	}
	if err := json.Unmarshal(trimmed, &f); err != nil {
		var typeErr *json.UnmarshalTypeError
		if asTypeError(err, &typeErr) && typeErr.Field != "" {
			f.ID = salvageID(trimmed)
			return f, Errorf(CodeInvalidField, "field %q has the wrong type", typeErr.Field)
		}
		return ClientFrame{}, Errorf(CodeBadFrame, "invalid JSON: %v", err)
	}
	if err := validID(f.ID); err != nil {
		f.ID = nil
		return f, err
	}
	return f, f.Validate()
}

func asTypeError(err error, target **json.UnmarshalTypeError) bool {
	te, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*target = te
	}
	return ok
}

// salvageID recovers the id of a frame whose other fields failed to decode.
func salvageID(data []byte) json.RawMessage {
	var probe struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(data, &probe) != nil || validID(probe.ID) != nil {
		return nil
	}
	return probe.ID
}

func validID(id json.RawMessage) *Error {
	if len(id) == 0 || string(id) == "null" {
		return nil
	}
	switch id[0] {
	case '"':
		var s string
		if json.Unmarshal(id, &s) != nil || utf8.RuneCountInString(s) > maxFrameIDLen {
			return Errorf(CodeInvalidField, "id must be a string of at most %d characters or a number", maxFrameIDLen)
		}
		return nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if len(id) > 20 {
			return Errorf(CodeInvalidField, "id number too long")
		}
		return nil
	}
	return Errorf(CodeInvalidField, "id must be a string or a number")
}

// Validate checks the fields f's type needs.
func (f *ClientFrame) Validate() *Error {
	switch f.Type {
	case "":
		return Errorf(CodeUnknownType, "field \"type\" is missing")
	case TypeSend:
		return validateSend(f)
	case TypeUnsubscribe:
		return needConversation(f.ConversationID)
	case TypeCancel:
		if err := needConversation(f.ConversationID); err != nil {
			return err
		}
		return optionalID("messageId", f.MessageID)
	case TypeRegenerate:
		if err := needConversation(f.ConversationID); err != nil {
			return err
		}
		if err := optionalID("messageId", f.MessageID); err != nil {
			return err
		}
		if err := validModel(f.Model); err != nil {
			return err
		}
		return validClientMessageID(f.ClientMessageID)
	case TypeSubscribe:
		return validateSubscribe(f)
	case TypePing:
		return nil
	}
	return Errorf(CodeUnknownType, "unknown frame type %q", f.Type)
}

func validateSend(f *ClientFrame) *Error {
	if f.ConversationID != "" && !persistence.ValidID(f.ConversationID) {
		return Errorf(CodeInvalidField, "conversationId is not a valid id")
	}
	if f.Content == nil || !HasVisible(*f.Content) {
		return Errorf(CodeInvalidField, "content is required")
	}
	if n := len([]rune(*f.Content)); n > MaxContentChars {
		return Errorf(CodeInvalidField, "content has %d characters; the limit is %d", n, MaxContentChars)
	}
	if err := validModel(f.Model); err != nil {
		return err
	}
	if err := validClientMessageID(f.ClientMessageID); err != nil {
		return err
	}
	if f.ParentMessageID != nil {
		return optionalID("parentMessageId", *f.ParentMessageID)
	}
	return nil
}

func validateSubscribe(f *ClientFrame) *Error {
	if err := needConversation(f.ConversationID); err != nil {
		return err
	}
	if err := optionalID("messageId", f.MessageID); err != nil {
		return err
	}
	if f.LastSeq != nil && *f.LastSeq < 0 {
		return Errorf(CodeInvalidField, "lastSeq must not be negative")
	}
	if f.LastReasoningSeq != nil && *f.LastReasoningSeq < 0 {
		return Errorf(CodeInvalidField, "lastReasoningSeq must not be negative")
	}
	return nil
}

// validModel checks the model a send or regenerate names ("": the
// conversation's).
func validModel(model string) *Error {
	if n := utf8.RuneCountInString(model); n > MaxModelChars {
		return Errorf(CodeInvalidField, "model has %d characters; the limit is %d", n, MaxModelChars)
	}
	return nil
}

// validClientMessageID checks the idempotency key of a send or regenerate.
func validClientMessageID(id string) *Error {
	if p := KeyProblem(id); p != "" {
		return Errorf(CodeInvalidField, "clientMessageId %s", p)
	}
	return nil
}

// KeyProblem says what is wrong with an idempotency key (a send's or
// regenerate's clientMessageId, a creation's clientId), or returns "". A
// key is at most 64 visible ASCII characters (U+0021 to U+007E: letters,
// digits, punctuation), as the web client's UUIDs are: a key is compared
// byte for byte, so one of spaces alone, or whose spaces, control or
// look-alike characters a reader cannot tell apart, would be a key nobody
// can spell again. "" is no key.
func KeyProblem(key string) string {
	if n := utf8.RuneCountInString(key); n > MaxKeyChars {
		return fmt.Sprintf("must be at most %d characters (got %d)", MaxKeyChars, n)
	}
	for _, r := range key {
		if r < 0x21 || r > 0x7e {
			return fmt.Sprintf("must be visible ASCII characters (letters, digits, punctuation), such as a UUID; %U is not", r)
		}
	}
	return ""
}

func needConversation(id string) *Error {
	if id == "" {
		return Errorf(CodeInvalidField, "conversationId is required")
	}
	return optionalID("conversationId", id)
}

func optionalID(field, id string) *Error {
	if id != "" && !persistence.ValidID(id) {
		return Errorf(CodeInvalidField, "%s is not a valid id", field)
	}
	return nil
}
