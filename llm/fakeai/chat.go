package fakeai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Message is one prompt message of a recorded request.
type Message struct {
	Role    string
	Content string
}

// Recorded is what the server saw of one chat completion request.
type Recorded struct {
	Seq          int64 // 1 for the first request
	Model        string
	Messages     []Message
	Stream       bool
	IncludeUsage bool
	// StreamOptions is whether the request carried stream_options at all.
	StreamOptions bool
	MaxTokens     int // max_tokens or max_completion_tokens; 0 when absent
	// ReasoningEffort is the request's reasoning_effort ("" when absent).
	ReasoningEffort string
	Temperature     *float64 // nil when absent
	TopP            *float64 // nil when absent
	Stop            []string // a string or an array of strings; nil when absent
	Body            []byte   // the request body as received
	Query           string   // the request URL's raw query
	Header          http.Header
	// Path is the request URL's path as it was sent (escaped), and
	// Deployment the Azure deployment it names, decoded ("" for
	// /v1/chat/completions).
	Path       string
	Deployment string
	// MaxTokensField is the field MaxTokens was read from: "max_tokens",
	// "max_completion_tokens" ("" when neither was set).
	MaxTokensField string
	Config         Config // the effective configuration
	Fault          Fault  // the fault actually applied (FaultTimes may drop it)
}

// chatRequest is the part of an OpenAI chat completion request we read.
type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           int             `json:"max_tokens"`
	MaxCompletionTokens int             `json:"max_completion_tokens"`
	ReasoningEffort     string          `json:"reasoning_effort"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	Stop                json.RawMessage `json:"stop"`
	body                []byte
}

// maxTokensField names the field of the request's token bound; "" when
// it has none (max_completion_tokens wins when both are set).
func (r chatRequest) maxTokensField() string {
	switch {
	case r.MaxCompletionTokens > 0:
		return "max_completion_tokens"
	case r.MaxTokens > 0:
		return "max_tokens"
	}
	return ""
}

// refused returns the first field Config.Refuse names that the request
// carries, else "".
func (r Recorded) refused() string {
	for _, f := range strings.Split(r.Config.Refuse, ",") {
		if r.carries(f) {
			return f
		}
	}
	return ""
}

// carries reports whether the request carries the field f a Config.Refuse
// may name.
func (r Recorded) carries(f string) bool {
	switch {
	case f == "reasoning_effort" && r.ReasoningEffort != "",
		f == "temperature" && r.Temperature != nil,
		f == "top_p" && r.TopP != nil,
		f == "stop" && r.Stop != nil,
		f == "stream_options" && r.StreamOptions,
		f != "" && f == r.MaxTokensField:
		return true
	}
	return false
}

// Recorded returns the most recent requests, oldest first (at most
// Options.RecordLimit).
func (s *Server) Recorded() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.records...)
}

// LastRequest returns the most recent request; ok is false when there was
// none.
func (s *Server) LastRequest() (r Recorded, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.records) == 0 {
		return Recorded{}, false
	}
	return s.records[len(s.records)-1], true
}

func (s *Server) record(r Recorded) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.records) >= s.opts.RecordLimit {
		n := copy(s.records, s.records[1:])
		s.records = s.records[:n]
	}
	s.records = append(s.records, r)
}

// chat serves POST /v1/chat/completions.
func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	seq := s.requests.Add(1)
	if !s.authorized(w, r) {
		return
	}
	req, msgs, err := decodeChat(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "invalid_request_error", "")
		return
	}
	cfg, key, err := resolve(s.opts.Defaults, r.Header, lastUser(msgs))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "invalid_request_error", "")
		return
	}
	rec := Recorded{
		Seq: seq, Model: req.Model, Messages: msgs, Stream: req.Stream,
		IncludeUsage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage, StreamOptions: req.StreamOptions != nil,
		MaxTokens: max(req.MaxTokens, req.MaxCompletionTokens), ReasoningEffort: req.ReasoningEffort,
		Temperature: req.Temperature, TopP: req.TopP, Stop: stopList(req.Stop), Body: req.body,
		MaxTokensField: req.maxTokensField(), Query: r.URL.RawQuery,
		Path: r.URL.EscapedPath(), Deployment: r.PathValue("deployment"),
		Header: r.Header.Clone(), Config: cfg,
	}
	if s.faultApplies(cfg, key) {
		rec.Fault = cfg.Fault
	}
	s.record(rec)
	s.opts.Logger.Debug("fakeai request", "seq", seq, "model", req.Model,
		"stream", req.Stream, "fault", rec.Fault, "tokens", cfg.Tokens)
	s.respond(w, r, rec)
}

// respond answers a decoded request.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, rec Recorded) {
	if code := rec.Fault.status(); code != 0 {
		writeStatusFault(w, code, rec.Config, rec.Fault == FaultQuota)
		return
	}
	if rec.Fault == FaultErrorBody {
		body := errorBody("Rate limit reached for requests. Please try again later.", "requests", "rate_limit_exceeded")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(bytes.TrimSuffix(body, []byte("\n")))
		return
	}
	if field := rec.refused(); field != "" {
		writeParamError(w, http.StatusBadRequest, Refusals[field], field, "unsupported_parameter")
		return
	}
	if bound := rec.Config.MaxOutput; bound > 0 && rec.MaxTokens > bound {
		writeParamError(w, http.StatusBadRequest, fmt.Sprintf("%s is too large: %d. This model supports at most %d "+
			"completion tokens, whereas you provided %d.", rec.MaxTokensField, rec.MaxTokens, bound, rec.MaxTokens),
			rec.MaxTokensField, "")
		return
	}
	if n := promptTokens(rec.Messages); rec.Config.Context > 0 && rec.Config.ContextWords.over(rec.Config.Context, n, rec.MaxTokens) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(rec.Config.ContextWords.contextBody(rec.Config.Context, n, rec.MaxTokens))
		return
	}
	s.active.Add(1)
	defer s.active.Add(-1)
	st := newStream(s, w, r, rec)
	if rec.Stream {
		st.serveSSE()
	} else {
		st.serveJSON()
	}
}

// writeStatusFault answers with an error status as OpenAI would, with
// cfg's Retry-After; quota answers a 429 as an account out of credit.
func writeStatusFault(w http.ResponseWriter, code int, cfg Config, quota bool) {
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		setRetryAfter(w.Header(), cfg.RetryAfter, cfg.RetryAfterForm)
	}
	switch {
	case quota:
		writeError(w, code, "You exceeded your current quota, please check your plan and billing details.",
			"insufficient_quota", "insufficient_quota")
	case code == http.StatusTooManyRequests:
		writeError(w, code, "Rate limit reached for requests. Please try again later.",
			"requests", "rate_limit_exceeded")
	case code == http.StatusForbidden:
		writeError(w, code, "Country, region, or territory not supported",
			"request_forbidden", "unsupported_country_region_territory")
	case code == http.StatusPaymentRequired:
		writeError(w, code, "Insufficient credits: add credits to this account to go on.",
			"invalid_request_error", "")
	case code >= 500:
		writeError(w, code, "The server had an error while processing your request. Sorry about that!",
			"server_error", "")
	default:
		writeError(w, code, fmt.Sprintf("Fake error with status %d.", code),
			"invalid_request_error", "")
	}
}

// setRetryAfter sets a wait d (none when not positive) in form.
func setRetryAfter(h http.Header, d time.Duration, form RetryAfterForm) {
	if d <= 0 {
		return
	}
	secs := int64((d + time.Second - 1) / time.Second)
	switch form {
	case RetryAfterBoth:
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
		h.Set("retry-after-ms", strconv.FormatInt(d.Milliseconds(), 10))
	case RetryAfterSeconds:
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	case RetryAfterDate:
		h.Set("Retry-After", time.Now().Add(time.Duration(secs)*time.Second).UTC().Format(http.TimeFormat))
	case RetryAfterMS:
		h.Set("retry-after-ms", strconv.FormatInt(d.Milliseconds(), 10))
	}
}

// decodeChat reads the request body.
func decodeChat(w http.ResponseWriter, r *http.Request) (chatRequest, []Message, error) {
	var req chatRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<20))
	if err != nil {
		return req, nil, fmt.Errorf("reading body: %w", err)
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, nil, fmt.Errorf("invalid JSON body: %w", err)
	}
	req.body = body
	if len(req.Messages) == 0 {
		return req, nil, fmt.Errorf("'messages' must not be empty")
	}
	msgs := make([]Message, len(req.Messages))
	for i, m := range req.Messages {
		msgs[i] = Message{Role: m.Role, Content: contentText(m.Content)}
	}
	return req, msgs, nil
}

// contentText reads a message content given as a string or as an array of
// parts ({"type":"text","text":...}).
func contentText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	_ = json.Unmarshal(raw, &parts)
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// stopList reads "stop" given as a string or an array of strings.
func stopList(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var list []string
	_ = json.Unmarshal(raw, &list)
	return list
}

// lastUser returns the content of the last user message.
func lastUser(msgs []Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return msgs[i].Content
		}
	}
	return ""
}

// promptTokens counts the words of every message, markers left out: the
// fake's prompt_tokens.
func promptTokens(msgs []Message) int {
	n := 0
	for _, m := range msgs {
		n += len(strings.Fields(StripMarkers(m.Content)))
	}
	return n
}
