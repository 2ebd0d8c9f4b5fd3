package httperr

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// DecodeJSON reads one JSON object from r's body into dst. Every failure is
// an *Error: 413 too_large when the body is over the limit set with
// http.MaxBytesReader (see LimitBody); 400 bad_request for a body that is not
// exactly one JSON object, has an unknown field, or is sent with a
// Content-Type other than JSON (no Content-Type is accepted); 400
// invalid_field, naming the field, for a value of the wrong JSON type.
// A body that is not valid UTF-8 is refused before it is decoded (encoding/json
// would quietly put U+FFFD in place of the bad bytes, where a WebSocket text
// frame that is not UTF-8 is refused): 400 invalid_field naming the field
// whose string holds the first bad byte, else 400 bad_request. So is a
// body holding the escape of half a surrogate pair alone ("\ud800",
// LoneSurrogate), which encoding/json would decode as U+FFFD too. A body
// sent with a Content-Encoding other than identity is refused before it is
// read (UnencodedBody). A body that arrives whole only once r's context's
// deadline has passed is 408 request_timeout (BodyTooLate). A body that ends before it is whole is the client
// gone, not an *Error: ErrBodyCut.
func DecodeJSON(r *http.Request, dst any) error {
	return decodeJSON(r, dst, time.Now())
}

// decodeJSON is DecodeJSON, the reading of the body having begun at began.
func decodeJSON(r *http.Request, dst any, began time.Time) error {
	if err := UnencodedBody(r.Header); err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return BadRequest("the body must be JSON (Content-Type: application/json)")
		}
	}
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil { // bounded by LimitBody
			if bodyCut(err) {
				return fmt.Errorf("%w: %w", ErrBodyCut, err)
			}
			return decodeError(err)
		}
		if dl, ok := r.Context().Deadline(); ok && !time.Now().Before(dl) {
			return BodyTooLate(time.Since(began))
		}
	}
	if !utf8.Valid(body) {
		return notUTF8(body)
	}
	if err := notText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("null")) {
		// encoding/json takes null for "leave dst as it is", without error.
		return BadRequest("the body must be a JSON object")
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if tooLarge(err) || errors.Is(err, os.ErrDeadlineExceeded) {
			return decodeError(err)
		}
		return BadRequest("the body must hold exactly one JSON object")
	}
	return nil
}

// UnencodedBody returns nil for a request whose body has no content
// coding (no Content-Encoding, or identity alone), else a 415
// unsupported_media_type whose Accept-Encoding says identity (RFC 7694):
// the server decodes no compressed body, and one read as it came (gzip
// taken for JSON, or a body declared br but sent plain, taken as it is)
// would be refused for the wrong reason or taken for what it is not.
func UnencodedBody(h http.Header) *Error {
	for _, line := range h.Values("Content-Encoding") {
		for _, coding := range strings.Split(line, ",") {
			if coding = strings.TrimSpace(coding); coding != "" && !strings.EqualFold(coding, "identity") {
				e := New(http.StatusUnsupportedMediaType, CodeUnsupportedMedia,
					fmt.Sprintf("the body's Content-Encoding %.32q is not supported: send it unencoded", coding))
				e.AcceptEncoding = "identity"
				return e
			}
		}
	}
	return nil
}

// DecodeOptionalJSON is DecodeJSON for a body that may be left out: an
// empty body (none, Content-Length 0, or a chunked body that holds
// nothing, whatever its Content-Type) leaves dst as it is.
func DecodeOptionalJSON(r *http.Request, dst any) error {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	began := time.Now()
	br := bufio.NewReaderSize(r.Body, 16)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return nil
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	return decodeJSON(r, dst, began)
}

// BodyTooLate is the 408 request_timeout of a body that arrived whole
// only once the request's time (its context's deadline: the route's
// bound, counted from the request's start) was spent, took being how long
// it was read: whatever the route would do next would run out of time at
// once, and its 503 would blame the server (the database) for the
// client's slow body. The log line of the request says how long it took.
func BodyTooLate(took time.Duration) *Error {
	e := New(http.StatusRequestTimeout, CodeRequestTimeout, "the request body arrived after the request's time ran out")
	e.Err = fmt.Errorf("the request body took %s to arrive, past the request's deadline", took.Round(time.Millisecond))
	return e
}

// ErrBodyCut is wrapped by DecodeJSON's error for a request body that
// ended before it was whole (shorter than its Content-Length, a chunked
// body without its last chunk, the connection reset): its client left
// while sending it. ClientGone reports it: it is answered (and logged,
// and counted) StatusClientClosed, not 400 as a body that is no JSON.
var ErrBodyCut = errors.New("the client left before its request body arrived whole")

// bodyCut reports whether err, from reading a request body, says the
// body was cut off: net/http's io.ErrUnexpectedEOF for a body that ended
// before its length (or its last chunk), or a reset connection.
func bodyCut(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// decodeError turns a json decoding error into a client-facing *Error.
func decodeError(err error) *Error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case tooLarge(err):
		return TooLarge(err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return New(http.StatusRequestTimeout, CodeRequestTimeout, "the request body did not arrive in time")
	case errors.Is(err, io.EOF):
		return BadRequest("the body is empty; a JSON object is expected")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("the body is not valid JSON")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return BadRequest("the body must be a JSON object")
		}
		return InvalidField(typ.Field, typeProblem(typ))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return BadRequest("unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return BadRequest("the body is not valid JSON")
	}
}

// LimitBody caps every request body at limit bytes (http.MaxBytesReader);
// reading past it fails with *http.MaxBytesError, which DecodeJSON answers
// with 413. A declared Content-Length over the limit is refused at once.
func LimitBody(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > limit {
			AbortError(c, TooLarge(&http.MaxBytesError{Limit: limit}))
			return
		}
		if c.Request.Body != nil && c.Request.Body != http.NoBody {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		}
		c.Next()
	}
}

// TooLarge is a 413 too_large for a body over the limit.
func TooLarge(cause error) *Error {
	msg := "request body too large"
	var mbe *http.MaxBytesError
	if errors.As(cause, &mbe) {
		msg = fmt.Sprintf("request body larger than %d bytes", mbe.Limit)
	}
	return New(http.StatusRequestEntityTooLarge, CodeTooLarge, msg)
}

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch {
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "a boolean"
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "a whole number"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "slice", kind == "array":
		return "an array"
	default:
		return "an object"
	}
}

// typeProblem says what is wrong with a value of the wrong type: a number
// given for a whole-number field is a fraction ("must be a whole number"),
// a whole value written with a fraction or an exponent (800.0, 1e3: the
// decoder takes only integer literals for such a field), or out of the
// field's range; anything else must be of the field's kind.
func typeProblem(typ *json.UnmarshalTypeError) string {
	kind := typ.Type.Kind().String()
	if num, ok := strings.CutPrefix(typ.Value, "number "); ok && (strings.HasPrefix(kind, "int") || strings.HasPrefix(kind, "uint")) {
		return wholeNumberProblem(num, typ.Type)
	}
	if strings.HasPrefix(typ.Value, "number ") && strings.HasPrefix(kind, "float") {
		return "is out of range" // a number too large for the field
	}
	return "must be " + jsonKind(kind)
}

// wholeNumberProblem says what is wrong with the JSON number num given
// for a field of the integer type t. An integer literal is refused only
// past t's range; a literal with a fraction or an exponent is refused
// whatever its value, and said to be out of range only past it (compared
// as a float64: exact but at the edges of a 64-bit range).
func wholeNumberProblem(num string, t reflect.Type) string {
	if !strings.ContainsAny(num, ".eE") {
		return "is out of range"
	}
	if !wholeLiteral(num) {
		return "must be a whole number"
	}
	f, _ := strconv.ParseFloat(num, 64) // ±Inf past float64's range
	switch {
	case !fits(f, t):
		return "is out of range"
	default:
		return "must be a whole number (written without a fraction or exponent)"
	}
}

// wholeLiteral reports whether the JSON number literal num is a whole
// number, read from its digits rather than from a float64 (1e-400 and
// 1.0000000000000001 read as 0 and 1 there): its digits shifted by its
// exponent leave none but zeros after the point.
func wholeLiteral(num string) bool {
	mant, exp, _ := strings.Cut(strings.ToLower(num), "e")
	intPart, frac, _ := strings.Cut(strings.TrimPrefix(mant, "-"), ".")
	digits := intPart + frac
	if strings.Trim(digits, "0") == "" {
		return true // zero, however written
	}
	e, err := strconv.Atoi(exp)
	switch {
	case exp == "":
		e = 0
	case err != nil: // an exponent past int's range: only a positive one shifts every digit in front of the point
		return !strings.HasPrefix(exp, "-")
	}
	zeros := len(digits) - len(strings.TrimRight(digits, "0"))
	return len(frac)-e <= zeros
}

// fits reports whether the whole number f is within the range of the
// integer type t.
func fits(f float64, t reflect.Type) bool {
	bits := t.Bits()
	if t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr {
		return f >= 0 && f < math.Ldexp(1, bits)
	}
	return f >= -math.Ldexp(1, bits-1) && f < math.Ldexp(1, bits-1)
}
