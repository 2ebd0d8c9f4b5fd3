package fakeai

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Mode selects the text a stream produces.
type Mode string

// Modes.
const (
	// ModeText cycles through a fixed vocabulary of ASCII and multi-byte
	// words ("héllo", "中文", "🙂", ...), each followed by a space.
	ModeText Mode = "text"
	// ModeMarkdown produces a markdown document with a heading, a list, a
	// table, inline code and fenced code blocks with a language.
	ModeMarkdown Mode = "markdown"
	// ModeXSS produces markdown carrying script injection payloads
	// (<script>, an <img onerror>, a javascript: link) for front-end tests.
	ModeXSS Mode = "xss"
)

// Fault is a failure the server injects into a response.
type Fault string

// Faults. Besides these, any three-digit HTTP status ("429", "500", "503",
// "400", ...) answers the request with that status and an OpenAI-style
// error body.
const (
	FaultNone        Fault = ""
	FaultRateLimit   Fault = "429"        // HTTP 429 with Retry-After (see Config.RetryAfter)
	FaultServerError Fault = "500"        // HTTP 500
	FaultHangFirst   Fault = "hang_first" // headers and the role chunk, then nothing until the client leaves
	FaultHangMid     Fault = "hang_mid"   // FaultAfter tokens, then nothing until the client leaves
	FaultCutMid      Fault = "cut_mid"    // FaultAfter tokens, then the TCP connection is closed (FIN)
	FaultResetMid    Fault = "reset_mid"  // FaultAfter tokens, then the TCP connection is reset (RST)
	FaultMalformed   Fault = "malformed"  // FaultAfter tokens, then a chunk that is not valid JSON, then [DONE]
	FaultErrorMid    Fault = "error_mid"  // FaultAfter tokens, then `data: {"error":{...}}`
	FaultEndMid      Fault = "end_mid"    // FaultAfter tokens, then a clean end of the body without finish_reason or [DONE]
	// FaultErrorChunk is OpenRouter's mid-stream error: FaultAfter tokens,
	// then an ordinary chunk carrying a top-level "error" object (a numeric
	// code and a message) and finish_reason "error", then [DONE].
	FaultErrorChunk Fault = "error_chunk"
	// FaultErrorBody answers HTTP 200 with an OpenAI-style error JSON body
	// (a rate limit) that does not end in a newline, instead of a stream,
	// as some gateways do.
	FaultErrorBody Fault = "error_body"
	// FaultCutEnd sends every token and the finish reason, then closes the
	// TCP connection without the usage chunk, [DONE] or the end of the
	// chunked body.
	FaultCutEnd Fault = "cut_end"
	// FaultResetEnd is FaultCutEnd with a TCP RST (an HTTP/2 RST_STREAM
	// is the same to the client): every token and the finish reason, then
	// the connection is reset.
	FaultResetEnd Fault = "reset_end"
	// FaultMalformedEnd sends every token and the finish reason, then a
	// usage chunk cut off inside its JSON, then [DONE].
	FaultMalformedEnd Fault = "malformed_end"
	// FaultHangEnd sends every token and the finish reason, then neither
	// the usage chunk nor [DONE]: it keeps the connection open, sending an
	// SSE comment (": ping") every Delay (10ms when 0) until the client
	// leaves, as some OpenAI-compatible servers and proxies do.
	FaultHangEnd Fault = "hang_end"
	// FaultQuota is OpenAI's answer to an account out of credit: HTTP 429
	// with type and code insufficient_quota (and Retry-After when
	// Config.RetryAfter is set), which no wait cures.
	FaultQuota Fault = "quota"
	// FaultEmptyMid sends FaultAfter tokens, then chunks with empty
	// content, one per Delay (10ms when Delay is 0), until the client
	// leaves: an upstream that keeps the stream alive without a token.
	FaultEmptyMid Fault = "empty_mid"
	// FaultErrorEvent is llama.cpp's mid-stream error: FaultAfter tokens,
	// then an SSE "error" field (`error: {"code":500,"message":...,
	// "type":"server_error"}`) instead of a data line, then [DONE].
	FaultErrorEvent Fault = "error_event"
	// FaultEventError is an SSE error event without an "error" member:
	// FaultAfter tokens, then `event: error` and a data line holding the
	// error object itself (`{"message":...,"type":"server_error","code":500}`),
	// then [DONE].
	FaultEventError Fault = "event_error"
	// FaultToolCall is a model asking to call a tool instead of
	// answering: FaultAfter tokens (none by default), then a chunk whose
	// delta carries tool_calls (one function call), the finish reason
	// "tool_calls", the usage chunk and [DONE]; without stream, a message
	// with tool_calls and that finish reason.
	FaultToolCall Fault = "tool_call"
)

// Framing is how the event stream's lines are written, in one of the
// shapes the SSE specification allows besides the usual LF line ends.
type Framing string

// Framings.
const (
	FramingLF Framing = "" // every line ends in LF (default)
	// FramingCR ends every line with a bare CR.
	FramingCR Framing = "cr"
	// FramingCRLF ends every line with CR LF.
	FramingCRLF Framing = "crlf"
	// FramingMultiline spreads each JSON data line over several data
	// lines of one event, cut before each member after the first (the
	// specification joins them with newlines, which JSON reads as space).
	FramingMultiline Framing = "multiline"
	// FramingBOM starts the body with a UTF-8 byte order mark.
	FramingBOM Framing = "bom"
)

// ContextWords selects the message of a prompt refused as too long.
type ContextWords string

// Wordings of a context-length refusal of a window of N tokens, a prompt
// of P and an answer of C (the request's max_tokens, 0 when it sets none).
const (
	// ContextOpenAI: "This model's maximum context length is N tokens.
	// However, your messages resulted in P tokens. Please reduce the
	// length of the messages."
	ContextOpenAI ContextWords = "openai"
	// ContextVLLM, vLLM's and OpenAI's older: "This model's maximum
	// context length is N tokens. However, you requested P+C tokens (P in
	// the messages, C in the completion). Please reduce the length of the
	// messages or completion." As they do, it counts the answer's max
	// tokens into the window: P+C above N is refused.
	ContextVLLM ContextWords = "vllm"
	// ContextBare names no number: "Please reduce the length of the
	// messages." (code context_length_exceeded all the same).
	ContextBare ContextWords = "bare"
	// ContextXAI, xAI's: "This model's maximum prompt length is N but the
	// request contains P tokens.", as {"code": "Client specified an
	// invalid argument", "error": "..."}.
	ContextXAI ContextWords = "xai"
	// ContextTogether, Together AI's and SGLang's: "The input (P tokens)
	// is longer than the model's context length (N tokens).", in OpenAI's
	// error shape without a code.
	ContextTogether ContextWords = "together"
	// ContextLMStudio, LM Studio's: "Trying to keep the first P tokens
	// when context the overflows. However, the model is loaded with
	// context length of only N tokens, which is not enough. Try to load
	// the model with a larger context length, or provide a shorter
	// input", as {"error": "..."}.
	ContextLMStudio ContextWords = "lmstudio"
)

// over reports whether a prompt of prompt tokens, with an answer of up to
// completion tokens asked for (0: none), exceeds window: both count with
// ContextVLLM, the prompt alone otherwise.
func (w ContextWords) over(window, prompt, completion int) bool {
	if w == ContextVLLM {
		return prompt+completion > window
	}
	return prompt > window
}

// contextRefusal is the message refusing a prompt of prompt tokens in a
// window of window, with an answer of completion tokens asked for.
func (w ContextWords) contextRefusal(window, prompt, completion int) string {
	switch w {
	case ContextVLLM:
		return fmt.Sprintf("This model's maximum context length is %d tokens. However, you requested %d tokens "+
			"(%d in the messages, %d in the completion). Please reduce the length of the messages or completion.",
			window, prompt+completion, prompt, completion)
	case ContextBare:
		return "Please reduce the length of the messages."
	case ContextXAI:
		return fmt.Sprintf("This model's maximum prompt length is %d but the request contains %d tokens.", window, prompt)
	case ContextTogether:
		return fmt.Sprintf("The input (%d tokens) is longer than the model's context length (%d tokens).", prompt, window)
	case ContextLMStudio:
		return fmt.Sprintf("Trying to keep the first %d tokens when context the overflows. However, the model is loaded "+
			"with context length of only %d tokens, which is not enough. Try to load the model with a larger context "+
			"length, or provide a shorter input", prompt, window)
	}
	return fmt.Sprintf("This model's maximum context length is %d tokens. However, your messages resulted in %d tokens. "+
		"Please reduce the length of the messages.", window, prompt)
}

// contextBody is the body refusing a prompt of prompt tokens in a window
// of window, in the wording's shape: OpenAI's with code
// context_length_exceeded, unless the server it mimics sends another.
func (w ContextWords) contextBody(window, prompt, completion int) []byte {
	msg := w.contextRefusal(window, prompt, completion)
	switch w {
	case ContextXAI:
		return encodeJSON(map[string]any{"code": "Client specified an invalid argument", "error": msg})
	case ContextTogether:
		return encodeError(map[string]any{"message": msg, "type": "invalid_request_error", "param": nil, "code": nil})
	case ContextLMStudio:
		return encodeJSON(map[string]any{"error": msg})
	}
	return errorBody(msg, "invalid_request_error", "context_length_exceeded")
}

// ParseContextWords checks a wording name: "" or one of the ContextWords constants.
func ParseContextWords(v string) (ContextWords, error) {
	switch w := ContextWords(v); w {
	case "", ContextOpenAI, ContextVLLM, ContextBare, ContextXAI, ContextTogether, ContextLMStudio:
		return w, nil
	}
	return "", fmt.Errorf("unknown wording")
}

// RetryAfterForm is the header form of a response's Retry-After.
type RetryAfterForm string

// Retry-After forms.
const (
	// RetryAfterBoth sends "Retry-After" in whole seconds (rounded up)
	// and OpenAI's "retry-after-ms" (default).
	RetryAfterBoth RetryAfterForm = ""
	// RetryAfterSeconds sends only "Retry-After" in whole seconds.
	RetryAfterSeconds RetryAfterForm = "seconds"
	// RetryAfterDate sends only "Retry-After" as an HTTP date (now plus
	// the wait, rounded up to a second).
	RetryAfterDate RetryAfterForm = "date"
	// RetryAfterMS sends only "retry-after-ms".
	RetryAfterMS RetryAfterForm = "ms"
)

// ParseRetryAfterForm checks a form name: "", "both" or one of the
// RetryAfterForm constants.
func ParseRetryAfterForm(v string) (RetryAfterForm, error) {
	switch f := RetryAfterForm(v); f {
	case RetryAfterBoth, RetryAfterSeconds, RetryAfterDate, RetryAfterMS:
		return f, nil
	case "both":
		return RetryAfterBoth, nil
	}
	return "", fmt.Errorf("unknown Retry-After form")
}

// Stamp selects which tokens carry a "[ts:<ns>] " prefix in their content.
type Stamp string

// Stamps.
const (
	StampNone  Stamp = ""
	StampFirst Stamp = "first" // only the first content token
	StampAll   Stamp = "all"   // every content token
)

// Config is how one response behaves. The server's Options.Defaults apply
// to every request; X-Fake-* headers and a [[fake ...]] marker override
// them field by field (see the package documentation).
type Config struct {
	// Tokens is the number of content tokens; 0 means the mode's natural
	// length (20 for text, one whole document for markdown and xss). A
	// request's max_tokens lower than this plus Reasoning ends the stream
	// early with finish_reason "length".
	Tokens int
	// Delay is the pause between content tokens; it defaults to 0.
	Delay time.Duration
	// FirstDelay is the pause after the headers before the first token.
	FirstDelay time.Duration
	// Mode is the text produced; it defaults to ModeText.
	Mode Mode
	// Fault is the failure to inject; it defaults to none.
	Fault Fault
	// FaultAfter is the number of content tokens sent before a mid-stream
	// fault; a negative value means half of the tokens.
	FaultAfter int
	// FaultTimes limits the fault to the first FaultTimes requests that
	// carry the same overrides (0: every request).
	FaultTimes int
	// RetryAfter, when positive, is sent with a 429 or a 503 as
	// "Retry-After" (whole seconds, rounded up) and "retry-after-ms", or
	// in the one form RetryAfterForm names.
	RetryAfter time.Duration
	// RetryAfterForm is how RetryAfter is sent; it defaults to both
	// headers (RetryAfterBoth).
	RetryAfterForm RetryAfterForm
	// Split writes each token holding a multi-byte UTF-8 character in two
	// network writes (two flushes) that cut that character in two.
	Split bool
	// Tag, when set, is put in front of the first token's content
	// followed by a space, so a load generator can tell streams apart.
	Tag string
	// Stamp adds "[ts:<MonotonicNanos>] " in front of the content of the
	// first or of every token (not part of ExpectedText; see StripStamps).
	Stamp Stamp
	// Reasoning is the number of reasoning chunks sent before the content
	// (see ReasoningTokens), each one Delay apart like content tokens;
	// they count against the request's max_tokens before the content.
	Reasoning int
	// ReasoningKey is the delta field of reasoning chunks; it defaults to
	// reasoning_content.
	ReasoningKey ReasoningKey
	// Pieces, when positive, sends the text of each content delta (a
	// token, or a chunk of inline thinking with its tags, see KeyThink and
	// KeyThinkOpen)
	// as several deltas of at most Pieces bytes, cut between characters
	// (a longer character is a delta of its own), written at once: a
	// server that streams by bytes or small tokens cuts "<think>" and
	// "</think>" across chunks so. ExpectedText is unchanged.
	Pieces int
	// Surrogates sends every token holding a character outside the Basic
	// Multilingual Plane ("🙂") as two chunks cut inside the character's
	// UTF-16 surrogate pair: one ends with `\ud83d`, the next starts with
	// `\ude42`.
	Surrogates bool
	// Context, when positive, refuses a prompt of more than Context prompt
	// tokens (see promptTokens; with ContextVLLM, a prompt and max_tokens
	// of more together) with HTTP 400, in the wording ContextWords selects
	// (OpenAI's code context_length_exceeded, unless the server it mimics
	// sends none).
	Context int
	// ContextWords is the wording of a Context refusal; it defaults to
	// OpenAI's current one.
	ContextWords ContextWords
	// Pings is the number of SSE comment lines (": OPENROUTER PROCESSING",
	// each followed by a blank line) sent right after the headers, all in
	// one write, as OpenRouter keeps a stream alive while the model has not
	// started answering.
	Pings int
	// Events puts an "event: message" field line before every data line,
	// as some SSE servers do.
	Events bool
	// EndDelay is a pause after [DONE] before the body ends (its chunked
	// encoding's last chunk is sent), as a proxy may send it late.
	EndDelay time.Duration
	// Framing is the shape of the stream's lines; it defaults to LF line
	// ends. Split applies to LF line ends only.
	Framing Framing
	// Finish is the finish_reason of a response the request's max tokens
	// did not cut ("length" then); it defaults to "stop". Providers send
	// their own: Mistral's "model_length", DeepSeek's
	// "insufficient_system_resource", Azure's "content_filter".
	Finish string
	// Refuse names a request field (max_tokens, max_completion_tokens,
	// reasoning_effort, temperature, top_p, stop or stream_options) that a request carrying it is refused for with
	// HTTP 400, in OpenAI's wording (see Refusals); several, separated
	// by commas ("temperature,top_p"), refuse a request for the first
	// of them it carries, as OpenAI refuses one parameter at a time.
	Refuse string
	// MaxOutput, when positive, refuses a request whose max_tokens (or
	// max_completion_tokens) is above it with HTTP 400, in OpenAI's
	// wording ("max_tokens is too large: T. This model supports at most N
	// completion tokens, whereas you provided T."), as a model with that
	// output bound does.
	MaxOutput int
}

// Refusals are the fields Config.Refuse may name, each with the message
// of the HTTP 400 that refuses a request carrying it: OpenAI's for a
// reasoning model sent max_tokens, and for a model that does not take
// reasoning_effort; an older server's for max_completion_tokens.
var Refusals = map[string]string{
	"max_tokens": "Unsupported parameter: 'max_tokens' is not supported with this model. " +
		"Use 'max_completion_tokens' instead.",
	"max_completion_tokens": "Unrecognized request argument supplied: max_completion_tokens",
	"reasoning_effort":      "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
	// OpenAI's reasoning models take none of the sampling parameters.
	"temperature": "Unsupported value: 'temperature' does not support 0.7 with this model. " +
		"Only the default (1) value is supported.",
	"top_p": "Unsupported parameter: 'top_p' is not supported with this model.",
	"stop":  "Unsupported parameter: 'stop' is not supported with this model.",
	// Azure OpenAI before API version 2024-09-01-preview, and servers
	// that take no fields they do not know.
	"stream_options": "Unrecognized request argument supplied: stream_options",
}

var markerRE = regexp.MustCompile(`\[\[fake(\s[^\]]*)?\]\]`)

// StripMarkers removes every [[fake ...]] marker from s.
func StripMarkers(s string) string {
	return strings.TrimSpace(markerRE.ReplaceAllString(s, ""))
}

// headerKeys maps X-Fake-* headers to marker keys.
var headerKeys = []string{
	"tokens", "delay", "first_delay", "mode", "fault", "after", "times",
	"retry_after", "retry_after_form", "split", "tag", "stamp", "reasoning", "reasoning_key", "pieces", "surrogates", "context",
	"context_words", "pings", "end_delay", "refuse", "events", "framing", "finish", "max_output",
}

// headerName returns the X-Fake-* header for a marker key.
func headerName(key string) string {
	return "X-Fake-" + strings.ReplaceAll(key, "_", "-")
}

// resolve applies the request's headers, then the marker in prompt, on top
// of def. It returns the config and a key naming the overrides (used to
// count FaultTimes).
func resolve(def Config, h http.Header, prompt string) (Config, string, error) {
	c := def
	var key strings.Builder
	for _, k := range headerKeys {
		if v := h.Get(headerName(k)); v != "" {
			if err := c.set(k, v); err != nil {
				return c, "", err
			}
			fmt.Fprintf(&key, "%s=%s ", k, v)
		}
	}
	for _, m := range markerRE.FindAllStringSubmatch(prompt, -1) {
		for _, f := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(f, "=")
			if err := c.set(k, v); err != nil {
				return c, "", err
			}
		}
		key.WriteString(m[0])
	}
	return c, key.String(), nil
}

// set applies one key=value override.
func (c *Config) set(k, v string) error {
	var err error
	switch k {
	case "tokens":
		c.Tokens, err = strconv.Atoi(v)
	case "delay":
		c.Delay, err = time.ParseDuration(v)
	case "first_delay":
		c.FirstDelay, err = time.ParseDuration(v)
	case "mode":
		c.Mode, err = parseMode(v)
	case "fault":
		c.Fault, err = ParseFault(v)
	case "after":
		c.FaultAfter, err = strconv.Atoi(v)
	case "times":
		c.FaultTimes, err = strconv.Atoi(v)
	case "retry_after":
		c.RetryAfter, err = parseSeconds(v)
	case "retry_after_form":
		c.RetryAfterForm, err = ParseRetryAfterForm(v)
	case "split":
		c.Split, err = strconv.ParseBool(v)
	case "events":
		c.Events, err = strconv.ParseBool(v)
	case "tag":
		c.Tag = v
	case "stamp":
		c.Stamp, err = parseStamp(v)
	case "reasoning":
		c.Reasoning, err = strconv.Atoi(v)
	case "reasoning_key":
		c.ReasoningKey, err = parseReasoningKey(v)
	case "pieces":
		if c.Pieces, err = strconv.Atoi(v); err == nil && c.Pieces < 0 {
			err = fmt.Errorf("negative")
		}
	case "surrogates":
		c.Surrogates, err = strconv.ParseBool(v)
	case "context":
		c.Context, err = strconv.Atoi(v)
	case "context_words":
		c.ContextWords, err = ParseContextWords(v)
	case "pings":
		c.Pings, err = strconv.Atoi(v)
	case "end_delay":
		c.EndDelay, err = time.ParseDuration(v)
	case "refuse":
		c.Refuse, err = parseRefuse(v)
	case "framing":
		c.Framing, err = ParseFraming(v)
	case "finish":
		c.Finish, err = parseFinish(v)
	case "max_output":
		c.MaxOutput, err = strconv.Atoi(v)
	default:
		return fmt.Errorf("fakeai: unknown setting %q", k)
	}
	if err != nil {
		return fmt.Errorf("fakeai: setting %s=%q: %w", k, v, err)
	}
	return nil
}

// parseSeconds accepts "2" (seconds) or a Go duration ("1500ms").
func parseSeconds(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}

// parseFinish accepts a finish reason of 1 to 40 lower-case letters,
// digits and '_'.
func parseFinish(v string) (string, error) {
	if !finishRE.MatchString(v) {
		return "", fmt.Errorf("not a finish reason")
	}
	return v, nil
}

var finishRE = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)

func parseRefuse(v string) (string, error) {
	if v == "none" || v == "" {
		return "", nil
	}
	for _, f := range strings.Split(v, ",") {
		if _, ok := Refusals[f]; !ok {
			return "", fmt.Errorf("unknown field %q", f)
		}
	}
	return v, nil
}

// ParseFraming checks a framing name: "", "lf" or one of the Framing constants.
func ParseFraming(v string) (Framing, error) {
	switch f := Framing(v); f {
	case FramingLF, FramingCR, FramingCRLF, FramingMultiline, FramingBOM:
		return f, nil
	case "lf":
		return FramingLF, nil
	}
	return "", fmt.Errorf("unknown framing")
}

func parseMode(v string) (Mode, error) {
	switch m := Mode(v); m {
	case "", ModeText, ModeMarkdown, ModeXSS:
		return m, nil
	}
	return "", fmt.Errorf("unknown mode")
}

func parseStamp(v string) (Stamp, error) {
	switch s := Stamp(v); s {
	case StampNone, StampFirst, StampAll:
		return s, nil
	case "0", "none":
		return StampNone, nil
	}
	return "", fmt.Errorf("unknown stamp")
}

// ParseFault checks a fault name: one of the Fault constants or a
// three-digit HTTP status from 400 to 599.
func ParseFault(v string) (Fault, error) {
	switch f := Fault(v); f {
	case FaultNone, FaultHangFirst, FaultHangMid, FaultCutMid, FaultResetMid,
		FaultMalformed, FaultErrorMid, FaultEndMid, FaultErrorChunk, FaultErrorBody, FaultCutEnd, FaultQuota, FaultEmptyMid,
		FaultErrorEvent, FaultEventError, FaultHangEnd, FaultResetEnd, FaultMalformedEnd, FaultToolCall:
		return f, nil
	case "none":
		return FaultNone, nil
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 400 && n <= 599 {
		return Fault(v), nil
	}
	return "", fmt.Errorf("unknown fault")
}

// status returns the HTTP status of a status fault, or 0.
func (f Fault) status() int {
	if f == FaultQuota {
		return http.StatusTooManyRequests
	}
	n, err := strconv.Atoi(string(f))
	if err != nil {
		return 0
	}
	return n
}

// midStream reports whether f happens after some tokens were sent.
func (f Fault) midStream() bool {
	switch f {
	case FaultHangMid, FaultCutMid, FaultResetMid, FaultMalformed, FaultErrorMid, FaultEndMid, FaultErrorChunk,
		FaultEmptyMid, FaultErrorEvent, FaultEventError, FaultToolCall:
		return true
	}
	return false
}
