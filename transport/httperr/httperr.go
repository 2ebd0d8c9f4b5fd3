// Package httperr is the one error shape every HTTP route answers with:
//
//	{"error": {"code": "not_found", "message": "conversation not found"}}
//
// with the matching status. Handlers return or abort with an *Error; anything
// else becomes a logged 500 "internal" whose cause never reaches the client.
package httperr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/persistence"
)

// Codes, as listed in docs/api.md.
const (
	CodeBadRequest       = "bad_request"            // 400: malformed JSON or id
	CodeInvalidField     = "invalid_field"          // 400: a field fails validation; the message names it
	CodeUnauthorized     = "unauthorized"           // 401
	CodeForbidden        = "forbidden"              // 403
	CodeNotFound         = "not_found"              // 404, also for another user's ids
	CodeMethodNotAllowed = "method_not_allowed"     // 405
	CodeRequestTimeout   = "request_timeout"        // 408: the body did not arrive in time
	CodeConflict         = "conflict"               // 409
	CodeTooLarge         = "too_large"              // 413: body over the limit
	CodeUnsupportedMedia = "unsupported_media_type" // 415: a body's Content-Encoding is not taken
	CodeRateLimited      = "rate_limited"           // 429, with Retry-After
	CodeInternal         = "internal"               // 500
	CodeUnavailable      = "unavailable"            // 503
)

// Error is an HTTP error the client may see. Err, when set, is the cause:
// it is logged, never sent.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // > 0 adds a Retry-After header (whole seconds, rounded up)
	// BearerError is the RFC 6750 error code a 401's challenge names
	// ("invalid_token"); "" names none, as for a request that carried no
	// token. Every 401 gets a WWW-Authenticate challenge (see Write).
	BearerError string
	// AcceptEncoding, when set, adds an Accept-Encoding header naming the
	// content codings a request body may have: a 415 for one the server
	// does not decode says which it does (RFC 9110 12.5.3, RFC 7694).
	AcceptEncoding string
	Err            error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error with the given status, code and message.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// BadRequest is a 400 bad_request.
func BadRequest(message string) *Error { return New(http.StatusBadRequest, CodeBadRequest, message) }

// InvalidField is a 400 invalid_field whose message starts with the field name.
func InvalidField(field, problem string) *Error {
	return New(http.StatusBadRequest, CodeInvalidField, field+": "+problem)
}

// Unauthorized is a 401 unauthorized for a request without a token, or
// whose credentials (a password) are wrong: its challenge names no error,
// as RFC 6750 (3.1) asks of a request that carried no token.
func Unauthorized(message string) *Error {
	return New(http.StatusUnauthorized, CodeUnauthorized, message)
}

// InvalidToken is a 401 unauthorized for a token that lets no one in
// (malformed, badly signed, expired, revoked, or its account gone): its
// challenge says error="invalid_token".
func InvalidToken(message string) *Error {
	e := Unauthorized(message)
	e.BearerError = "invalid_token"
	return e
}

// InvalidRequest is a 400 bad_request for a malformed authenticated
// request (RFC 6750 3.1): its challenge says error="invalid_request".
func InvalidRequest(message string) *Error {
	e := BadRequest(message)
	e.BearerError = "invalid_request"
	return e
}

// RepeatedAuthorization returns InvalidRequest for a request carrying more
// than one Authorization header, nil for one with at most one. Which of
// them speaks for the request is not for the server to guess: taking the
// first let a good token followed by junk in, and refused the other order.
func RepeatedAuthorization(h http.Header) *Error {
	if len(h.Values("Authorization")) > 1 {
		return InvalidRequest("more than one Authorization header: send one")
	}
	return nil
}

// Realm is the realm of the Bearer challenge every 401 carries.
const Realm = "chatd"

// Challenge returns the WWW-Authenticate value of e, a 401 (RFC 9110
// 11.6.1: a 401 must carry one) or an error with a BearerError (a 400
// invalid_request): the Bearer scheme of RFC 6750 with Realm, and for a
// BearerError that error and the message as its description (without
// the characters the RFC keeps out of it).
func (e *Error) Challenge() string {
	c := `Bearer realm="` + Realm + `"`
	if e.BearerError == "" {
		return c
	}
	c += `, error="` + e.BearerError + `"`
	if d := description(e.Message); d != "" {
		c += `, error_description="` + d + `"`
	}
	return c
}

// description keeps the characters RFC 6750 allows in error_description
// (printable ASCII but the double quote and the backslash).
func description(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}

// Forbidden is a 403 forbidden.
func Forbidden(message string) *Error { return New(http.StatusForbidden, CodeForbidden, message) }

// NotFound is a 404 not_found.
func NotFound(message string) *Error { return New(http.StatusNotFound, CodeNotFound, message) }

// Conflict is a 409 conflict.
func Conflict(message string) *Error { return New(http.StatusConflict, CodeConflict, message) }

// RateLimited is a 429 rate_limited telling the client to wait retryAfter.
func RateLimited(message string, retryAfter time.Duration) *Error {
	e := New(http.StatusTooManyRequests, CodeRateLimited, message)
	e.RetryAfter = retryAfter
	return e
}

// Internal is a 500 internal; cause is logged, the client sees a generic message.
func Internal(cause error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal,
		Message: "internal server error", Err: cause}
}

// Unavailable is a 503 unavailable (a busy server or an unreachable database);
// cause is logged.
func Unavailable(message string, cause error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
		Message: message, Err: cause, RetryAfter: time.Second}
}

// MessageStoreUnavailable is the message of the 503 answering a request
// the database could not take now (persistence.ErrUnavailable).
const MessageStoreUnavailable = "the database cannot take this request now; retry in a moment"

// body is the JSON document every error is sent as.
type body struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Write sends e to w (headers and body); a 401, or an error with a
// BearerError, carries its Challenge in WWW-Authenticate, whoever sends
// it, and e.AcceptEncoding its header. It is for plain net/http code; gin
// handlers use Abort or AbortError.
func Write(w http.ResponseWriter, e *Error) {
	var b body
	b.Error.Code, b.Error.Message = e.Code, e.Message
	data, _ := json.Marshal(b) // two strings: cannot fail
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.Status == http.StatusUnauthorized || e.BearerError != "" {
		h.Set("WWW-Authenticate", e.Challenge())
	}
	if e.AcceptEncoding != "" {
		h.Set("Accept-Encoding", e.AcceptEncoding)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(data, '\n'))
}

// Abort stops the gin chain and answers with status, code and message.
func Abort(c *gin.Context, status int, code, message string) {
	AbortError(c, New(status, code, message))
}

// StatusClientClosed is the status (nginx's 499) a request is logged and
// counted with when it failed because its client left (its context was
// canceled): nobody is there to read an answer, and it is no failure of
// the server's.
const StatusClientClosed = 499

// ClientGone reports whether err is r's client leaving: err wraps
// context.Canceled and r's context has ended (its connection closed), or
// err wraps ErrBodyCut (the client left while sending the body, before
// net/http watches the connection and ends the context). Such a failure
// is answered (and logged, and counted) StatusClientClosed at info level,
// never as a server error nor as a bad request.
func ClientGone(r *http.Request, err error) bool {
	return errors.Is(err, ErrBodyCut) || errors.Is(err, context.Canceled) && r.Context().Err() != nil
}

// AbortError stops the gin chain and answers with err: a call cut because
// the client left (context.Canceled in err's chain, the request's context
// ended: ClientGone) is StatusClientClosed with no body, whatever *Error
// wraps it (a 503 "cannot check the token now" whose store read was cut
// is the client gone, not the store failing); otherwise an *Error in
// err's chain is sent as is, a call that ran out of its time
// (context.DeadlineExceeded: a store that did not answer within the
// request's bound) or that the database could not take now
// (persistence.ErrUnavailable: a full disk, a lock another process holds)
// is a 503 unavailable with Retry-After, anything else is a 500. Errors
// with a cause (and every 5xx) are attached to the context (c.Errors) so
// the request log shows them.
func AbortError(c *gin.Context, err error) {
	var e *Error
	switch {
	case c.Request != nil && ClientGone(c.Request, err):
		_ = c.Error(err)
		c.Abort()
		if !c.Writer.Written() {
			c.Writer.WriteHeader(StatusClientClosed)
		}
		return
	case errors.As(err, &e):
	case errors.Is(err, context.DeadlineExceeded):
		e = Unavailable("the server did not answer in time; retry", err)
	case errors.Is(err, persistence.ErrUnavailable):
		e = Unavailable(MessageStoreUnavailable, err)
	default:
		e = Internal(err)
	}
	if e.Err != nil || e.Status >= 500 {
		_ = c.Error(err) // gin keeps it for the request logger
	}
	c.Abort()
	if c.Writer.Written() {
		return // too late to change the answer (a stream already started)
	}
	Write(c.Writer, e)
}
