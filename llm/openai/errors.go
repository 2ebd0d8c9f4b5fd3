package openai

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"chatd/internal/durtext"
	"chatd/llm"
)

// classify turns a failed attempt into an *llm.Error whose Message is safe
// to show: upstream text is included only for rejected requests, cleaned of
// the API key and of anything that looks like one.
func classify(err error, st *attempt, key secrets) *llm.Error {
	var apiErr *goopenai.APIError
	var reqErr *goopenai.RequestError
	var urlErr *url.Error
	var redirect *redirectError
	var empty *emptyFinishError
	if be := bodyError(err); be != nil {
		// An error body in another shape than OpenAI's: classified by
		// what it says, as OpenAI's would be.
		err = errors.Join(be, err) // be first: go-openai may hold an empty APIError in err
	}
	switch {
	case errors.As(err, &apiErr) && contextLength(apiErr):
		// Before the in-stream case: an error event inside a 200 stream
		// (status 0) may refuse the prompt as too long, too.
		return contextLengthError(apiErr, apiErr.HTTPStatusCode, key, err)
	case errors.As(err, &redirect):
		return &llm.Error{Kind: llm.KindBadRequest, Status: redirect.status, Err: err,
			Message: fmt.Sprintf("The model provider's URL redirects to %s (HTTP %d), which a chat request cannot follow: set the base URL to where it leads.",
				clean(shownURL(redirect.to), key), redirect.status)}
	case errors.Is(err, errWebPage):
		return &llm.Error{Kind: llm.KindUpstream, Status: st.status, Err: err,
			Message: "The model provider's URL answered with a web page, not a chat completion stream: check its base URL (it usually ends in /v1)."}
	case errors.Is(err, errNotStream):
		return &llm.Error{Kind: llm.KindUpstream, Status: st.status, Err: err,
			Message: "The model provider answered with text that is not a chat completion stream: check its base URL (it usually ends in /v1)."}
	case errors.As(err, &empty):
		return &llm.Error{Kind: llm.KindUpstream, Status: st.status, Err: err, Message: empty.message(key)}
	case errors.Is(err, errEmptyStream):
		return &llm.Error{Kind: llm.KindUpstream, Status: st.status, Err: err,
			Message: "The model provider ended the stream without an answer: no text, and no reason why."}
	case errors.Is(err, errWholeReply):
		return &llm.Error{Kind: llm.KindUpstream, Status: st.status, Err: err,
			Message: "The model provider answered with a whole reply instead of streaming it: it must support streaming (\"stream\": true)."}
	case tooLarge(err):
		return &llm.Error{Kind: llm.KindContextLength, Status: http.StatusRequestEntityTooLarge, Err: err,
			Message: "The conversation is too long for this model provider: it refused the request as too large (HTTP 413)."}
	case errors.As(err, &apiErr) && quotaExhausted(apiErr):
		// Before rate limiting: OpenAI answers it 429, but no wait cures
		// it, so it is not retried.
		return quotaError(apiErr.HTTPStatusCode, apiErr.Message, key, err)
	case errors.As(err, &apiErr) && apiErr.HTTPStatusCode == 0:
		return reportedError(apiErr, key, err)
	case errors.As(err, &apiErr):
		return statusError(apiErr.HTTPStatusCode, apiErr.Message, key, retryAfter(st.header), err)
	case errors.As(err, &reqErr):
		return statusError(reqErr.HTTPStatusCode, "", key, retryAfter(st.header), err)
	case malformed(err):
		return &llm.Error{Kind: llm.KindMalformed, Err: err,
			Message: "The model provider sent a reply that could not be read."}
	case st.status == 0 && !errors.As(err, &urlErr):
		// go-openai refused to build the request (model or parameters).
		return &llm.Error{Kind: llm.KindBadRequest, Err: err,
			Message: "The request could not be sent: " + clean(err.Error(), key)}
	case st.status == 0:
		why, lasting := unreachable(err)
		if lasting {
			err = fmt.Errorf("%w: %w", errLasting, err)
		}
		return &llm.Error{Kind: llm.KindConnection, Err: err,
			Message: "Could not reach the model provider" + why + "."}
	}
	return &llm.Error{Kind: llm.KindConnection, Status: st.status, Err: err,
		Message: "The connection to the model provider was lost before the answer was complete."}
}

// errLasting marks a connection failure no wait cures (see unreachable):
// it is not retried.
var errLasting = errors.New("a lasting connection failure")

// unreachable says why a connection could not be made, when the cause is
// one the provider's operator can fix (": its TLS certificate ..."), and
// whether it lasts: a certificate the client does not trust, https:// to
// a server speaking plain HTTP. A refused connection (a server starting or
// stopped) may pass.
func unreachable(err error) (why string, lasting bool) {
	var certErr *tls.CertificateVerificationError
	var authErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidErr x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.As(err, &authErr):
		return certRefused(authErr), true
	case errors.As(err, &hostErr):
		return certRefused(hostErr), true
	case errors.As(err, &invalidErr):
		return certRefused(invalidErr), true
	case errors.As(err, &certErr):
		return certRefused(certErr), true
	case errors.As(err, &recordErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// net/http reports the record error in words of its own.
		return ": it does not answer HTTPS (its base URL may need http://)", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return ": the connection was refused", false
	}
	return "", false
}

// certRefused says why a certificate was not accepted, in the words of
// its error alone (not the request's URL).
func certRefused(err error) string {
	return ": its TLS certificate was not accepted (" + clean(err.Error(), nil) + ")"
}

// contextLength reports an upstream refusal of a prompt longer than the
// model's context window: OpenAI's code context_length_exceeded,
// llama.cpp's type exceed_context_size_error, or the wording of vLLM,
// llama.cpp, TGI, Ollama, Anthropic-compatible servers, xAI, Together AI,
// SGLang, LM Studio and others (contextlen.go); as an HTTP 400 or
// 413, or as an error event inside a 200 stream (status 0).
func contextLength(e *goopenai.APIError) bool {
	if e.HTTPStatusCode != http.StatusBadRequest && e.HTTPStatusCode != http.StatusRequestEntityTooLarge &&
		e.HTTPStatusCode != http.StatusUnprocessableEntity && e.HTTPStatusCode != 0 {
		return false
	}
	if code, ok := e.Code.(string); ok && code == "context_length_exceeded" || e.Type == "exceed_context_size_error" {
		return true
	}
	m := strings.ToLower(e.Message)
	for _, s := range []string{"maximum context length", "context length exceeded", "context_length_exceeded",
		"exceeds the context window", "exceed context window", "context window exceeded",
		"exceeds the available context size", "prompt is too long", "`max_new_tokens` must be <=",
		"context length is only", "cannot be greater than max_model_len", "longer than the maximum model length",
		"`inputs` must have less than", "input length exceeds the context length",
		"exceeds the maximum number of tokens allowed", "is longer than the model's context length",
		"tokens to keep from the initial prompt is greater than the context length"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return slices.ContainsFunc(refusalPatterns, func(re *regexp.Regexp) bool { return re.MatchString(e.Message) })
}

// bodyError returns the error an upstream's error response states in a
// shape go-openai does not read (it wants {"error": {"message": ...}}),
// as an APIError with the response's status: a top-level message (older
// vLLM: {"object": "error", "message": ..., "type": ..., "code": 400}),
// an error that is a string (Hugging Face TGI: {"error": ..., "error_type":
// ...}), a detail string (FastAPI servers) or OpenAI's shape inside a
// list (Google's APIs: [{"error": {"code": 400, "message": ...}}]). Nil
// when err is no such response or its body says nothing readable.
func bodyError(err error) *goopenai.APIError {
	var reqErr *goopenai.RequestError
	if !errors.As(err, &reqErr) || len(reqErr.Body) == 0 {
		return nil
	}
	if e := listedError(reqErr.Body); e != nil {
		e.HTTPStatus, e.HTTPStatusCode = reqErr.HTTPStatus, reqErr.HTTPStatusCode
		return e
	}
	var b struct {
		Message   any    `json:"message"`
		Error     any    `json:"error"`
		Detail    any    `json:"detail"`
		Type      string `json:"type"`
		ErrorType string `json:"error_type"`
		Code      any    `json:"code"`
	}
	if json.Unmarshal(reqErr.Body, &b) != nil {
		return nil
	}
	msg := ""
	for _, v := range []any{b.Message, b.Error, b.Detail} {
		if s := detailText(v); strings.TrimSpace(s) != "" {
			msg = s
			break
		}
	}
	if msg == "" {
		return nil
	}
	return &goopenai.APIError{Message: msg, Type: cmp.Or(b.Type, b.ErrorType), Code: b.Code,
		HTTPStatus: reqErr.HTTPStatus, HTTPStatusCode: reqErr.HTTPStatusCode}
}

// detailText is the text of an error's message: a string, or a list of
// validation details (FastAPI servers' [{"loc": [...], "msg": ...}],
// inside {"detail": ...} for Mistral's), each as "field: reason", joined
// with "; "; "" for anything else.
func detailText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		return detailText(v["detail"])
	case []any:
		var parts []string
		for _, d := range v {
			if s := detailItem(d); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "; ")
	}
	return ""
}

// detailItem is one validation detail as "field: reason" (the field's
// location without its leading "body"), or a string detail as it is.
func detailItem(d any) string {
	m, ok := d.(map[string]any)
	if !ok {
		s, _ := d.(string)
		return s
	}
	msg, _ := m["msg"].(string)
	loc, _ := m["loc"].([]any)
	var path []string
	for i, p := range loc {
		if s := fmt.Sprint(p); i > 0 || s != "body" {
			path = append(path, s)
		}
	}
	if len(path) == 0 || msg == "" {
		return msg
	}
	return strings.Join(path, ".") + ": " + msg
}

// listedError returns the error of a body that is a list whose first
// element is OpenAI's error shape ({"error": {"message": ...}}), else nil.
func listedError(body []byte) *goopenai.APIError {
	var list []json.RawMessage
	if b := bytes.TrimSpace(body); len(b) == 0 || b[0] != '[' || json.Unmarshal(b, &list) != nil || len(list) == 0 {
		return nil
	}
	var first struct {
		Error *goopenai.APIError `json:"error"`
	}
	if json.Unmarshal(list[0], &first) != nil || first.Error == nil || strings.TrimSpace(first.Error.Message) == "" {
		return nil
	}
	return first.Error
}

// quotaExhausted reports an account out of credit or quota: HTTP 402
// (OpenRouter, DeepSeek, Anthropic), or an error code 402 inside a 200
// stream (OpenRouter's), or the type or code insufficient_quota (OpenAI's,
// sent with HTTP 429 like a rate limit) or billing_error (Anthropic's).
func quotaExhausted(e *goopenai.APIError) bool {
	if e.HTTPStatusCode == http.StatusPaymentRequired || numericCode(e.Code) == http.StatusPaymentRequired {
		return true
	}
	code, _ := e.Code.(string)
	for _, s := range []string{code, e.Type} {
		if s == "insufficient_quota" || s == "billing_error" {
			return true
		}
	}
	return false
}

// quotaError is a provider's refusal for want of credit or quota, with its
// text (upstream, "" when it gave none): not retried (see retryable).
func quotaError(status int, upstream string, key secrets, err error) *llm.Error {
	msg := "The model provider refused the request: out of credit / quota exhausted (check the account's plan and billing)"
	if upstream = clean(upstream, key); upstream != "" {
		msg += ": " + upstream
	} else {
		msg += "."
	}
	return &llm.Error{Kind: llm.KindQuota, Status: status, Err: err, Message: msg}
}

// tooLarge reports an HTTP 413 that does not say more (a proxy's body
// limit, often an HTML page): for a chat completion, whose body is the
// conversation, the conversation is too long for this upstream.
func tooLarge(err error) bool {
	var apiErr *goopenai.APIError
	var reqErr *goopenai.RequestError
	return errors.As(err, &apiErr) && apiErr.HTTPStatusCode == http.StatusRequestEntityTooLarge ||
		errors.As(err, &reqErr) && reqErr.HTTPStatusCode == http.StatusRequestEntityTooLarge
}

// reportedError classifies an error an upstream reported inside a 200
// response (an error event, a chunk's "error" member, an error body), by
// its code and wording as its HTTP status would be: rate limiting, a
// timeout, an account out of credit or quota, another refusal of the
// request (a 4xx code); an upstream error when neither says more. A code
// of 429 or a 5xx (OpenRouter's 502 when the provider failed, as a
// number or a numeric string) is its Status, so that it is retried before
// the first token as that HTTP status is (see retryable); other errors
// keep Status 0 and are not. The upstream's text is always shown.
func reportedError(e *goopenai.APIError, key secrets, err error) *llm.Error {
	detail := clean(e.Message, key)
	code := numericCode(e.Code)
	switch {
	case contextLength(e):
		return contextLengthError(e, 0, key, err)
	case quotaExhausted(e):
		return quotaError(0, e.Message, key, err)
	case code == http.StatusTooManyRequests || rateLimit(e):
		return &llm.Error{Kind: llm.KindRateLimited, Status: retriedCode(code), Err: err,
			Message: "The model provider is rate limiting requests: " + detail}
	case code == http.StatusRequestTimeout:
		return &llm.Error{Kind: llm.KindTimeout, Err: err,
			Message: "The model provider timed out: " + detail}
	case code >= 400 && code < 500:
		return &llm.Error{Kind: llm.KindBadRequest, Err: err,
			Message: "The model provider rejected the request: " + detail}
	}
	return &llm.Error{Kind: llm.KindUpstream, Status: retriedCode(code), Err: err,
		Message: "The model provider reported an error: " + detail}
}

// retriedCode returns an error code reported inside a stream that stands
// for an HTTP status retried before the first token (429, 5xx), else 0.
func retriedCode(code int) int {
	if code == http.StatusTooManyRequests || code >= 500 && code <= 599 {
		return code
	}
	return 0
}

// numericCode returns an error code that is an HTTP status (OpenRouter's
// 502, or "429"), else 0.
func numericCode(code any) int {
	switch c := code.(type) {
	case int:
		return c
	case float64:
		return int(c)
	case string:
		n, _ := strconv.Atoi(c)
		return n
	}
	return 0
}

// rateLimit reports an error whose code, type or message says rate limit
// (OpenAI's code rate_limit_exceeded, Anthropic's type rate_limit_error).
func rateLimit(e *goopenai.APIError) bool {
	code, _ := e.Code.(string)
	s := strings.ToLower(code + " " + e.Type + " " + e.Message)
	return strings.Contains(s, "rate_limit") || strings.Contains(s, "rate limit")
}

// statusError classifies an HTTP error status; wait is the response's
// Retry-After (0: none), which the message of a 429, or of a 5xx that
// gave one, names.
func statusError(code int, upstream string, key secrets, wait time.Duration, err error) *llm.Error {
	e := &llm.Error{Status: code, Err: err, Kind: llm.KindBadRequest}
	detail := ""
	if upstream != "" {
		detail = ": " + clean(upstream, key)
	}
	switch {
	case code == http.StatusPaymentRequired:
		return quotaError(code, upstream, key, err)
	case code == http.StatusTooManyRequests:
		e.Kind, e.Message = llm.KindRateLimited, "The model provider is rate limiting requests; try again in "+waitText(wait)+"."
	case code >= 500 || code < 400:
		e.Kind, e.Message = llm.KindUpstream, "The model provider had an error."
		if wait > 0 {
			// A 503 asking for a wait: not retried when it is past
			// RetryMax, so the user learns how long it asked for.
			e.Message = "The model provider had an error; try again in " + waitText(wait) + "."
		}
	case code == http.StatusRequestTimeout:
		// A proxy or the provider gave up waiting: retried, like a 5xx.
		e.Kind, e.Message = llm.KindTimeout, "The model provider timed out the request."
	case code == http.StatusUnauthorized:
		// Not quoted: a careless upstream repeats the key it was given.
		e.Message = "The model provider refused the credentials; check the API key."
	case code == http.StatusForbidden:
		// A key without access, or a refusal of another kind (OpenAI's
		// unsupported region, OpenRouter's moderation, Azure's network
		// rules): the provider's text says which.
		e.Message = "The model provider refused access (check the API key and what its account may use)" + cmp.Or(detail, ".")
	case code == http.StatusNotFound:
		e.Message = "The model provider does not know this model or endpoint" + detail
	default:
		e.Message = "The model provider rejected the request" + detail
	}
	return e
}

// waitText names a wait an upstream asked for, rounded up to a second
// ("2s", "1m", "24h"); "a moment" when it named none.
func waitText(d time.Duration) string {
	if d <= 0 {
		return "a moment"
	}
	return durtext.Short((d + time.Second - 1).Truncate(time.Second))
}

// malformed reports errors of a chunk that does not parse, or of a line
// too long to be one.
func malformed(err error) bool {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	return errors.As(err, &syn) || errors.As(err, &typ) ||
		errors.Is(err, goopenai.ErrTooManyEmptyStreamMessages) || errors.Is(err, errLineTooLong)
}

var keyLike = regexp.MustCompile(`\b(sk|pk|rk|key)-[A-Za-z0-9_*\-]{4,}`)

// maxDetail bounds upstream text quoted in a message.
const maxDetail = 200

// clean makes upstream text safe to show: only characters that display as
// what they are, as in a title (llm.PlainText: no control character but
// white space, no bidirectional control such as U+202E, no other format
// character a title refuses), no configured secret (see secrets) nor
// anything shaped like an API key, one line, at most maxDetail characters
// cut between whole user-perceived characters (llm.CutText). The
// characters go first, so that none hidden inside a key keeps it from
// being redacted.
func clean(s string, key secrets) string {
	s = keyLike.ReplaceAllString(key.redact(llm.PlainText(s)), "[redacted]")
	s = strings.Join(strings.Fields(s), " ")
	if cut := llm.CutText(s, maxDetail); cut != s {
		s = cut + "…"
	}
	return s
}
