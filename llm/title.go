package llm

import (
	"context"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Titler names conversations with a cheap model call. Its Title method
// matches the hub's titler function type.
type Titler struct {
	// Streamer answers the title request (usually the Router).
	Streamer Streamer
	// Timeout bounds the model call; it defaults to 30s, room for a
	// model that reasons first.
	Timeout time.Duration
	// MaxTokens bounds the tokens the model may produce for a title,
	// reasoning included; it defaults to DefaultTitleTokens, and is
	// lowered to the bounds of the model TitleFor is given. The reply is
	// read only until its title line is complete (see Title), so an
	// ordinary model is not paid for more than a title.
	MaxTokens int
	// ReasoningEffort is asked of reasoning models that take one (see
	// Request.ReasoningEffort); it defaults to "low", the lowest every
	// OpenAI reasoning model accepts. A model sent it (see EffortSender)
	// that refuses the request is asked again without it.
	ReasoningEffort string
	// Logger receives failures at debug level; it defaults to slog.Default().
	Logger *slog.Logger
}

// Title names a conversation with s (see Titler.Title).
func Title(ctx context.Context, s Streamer, model, prompt, answer string) string {
	return (&Titler{Streamer: s}).Title(ctx, model, prompt, answer)
}

// Title is TitleFor a model of which nothing but its id is known.
func (t *Titler) Title(ctx context.Context, model, prompt, answer string) string {
	return t.TitleFor(ctx, ModelInfo{ID: model}, prompt, answer)
}

// Limits of a title, in characters and words.
const (
	maxTitleChars    = 60
	maxFallbackChars = 50
	maxFallbackWords = 6
	// maxTitleReply bounds the bytes of the model's reply kept: room for
	// a model thinking inline (<think>...</think>) before the title, when
	// MaxTokens lets it get that far and the model's client hands that
	// thinking over as text (the OpenAI client moves a leading block, or
	// the thinking before </think> of a model declared to have its
	// template open it, to the reasoning, dropped here).
	maxTitleReply = 16 << 10
	// titleReadChars is how much of the answer after any thinking is read
	// when it has no line break: twice what a title keeps, so CleanTitle
	// cuts it as it would cut the whole line.
	titleReadChars = 2 * maxTitleChars
)

// DefaultTitleTokens is a title request's default token budget: a title
// is a few tokens, but a reasoning model spends its reasoning from the
// same budget before it answers (OpenAI's reasoning models at low effort,
// DeepSeek-R1 and QwQ with no way to ask them to think less).
const DefaultTitleTokens = 1024

const titleSystemPrompt = "You name chat conversations. Reply with a title of 3 to 6 words " +
	"for the conversation below, in the language of the user's message. " +
	"Reply with the title only: no quotes, no markdown, no final punctuation."

// demoer is implemented by Streamers that can tell a demo model apart.
type demoer interface{ IsDemo(model string) bool }

// EffortSender is implemented by Streamers that can tell whether a
// request for model sends its Request.ReasoningEffort upstream (llm/openai's
// Client, the Router): the Titler asks a refused title request again
// without the effort only when it was sent.
type EffortSender interface {
	SendsReasoningEffort(ctx context.Context, model string) bool
}

// Thinker is a Streamer that tells its reasoning models (ModelInfo.Reasoning)
// by the name it knows them by, some perhaps learned from its server as it
// answers (llm/openai: a server refusing max_tokens), so that a Router
// lists what it knows now, not what it knew when it was built.
type Thinker interface {
	Thinks(model string) bool
}

// sendsEffort reports whether s sends model's reasoning effort upstream;
// true when s cannot tell (it may have).
func sendsEffort(ctx context.Context, s Streamer, model string) bool {
	if e, ok := s.(EffortSender); ok {
		return e.SendsReasoningEffort(ctx, model)
	}
	return true
}

// TitleFor asks the model for a 3-6 word title of the first exchange and
// cleans it (one line, no quotes or final punctuation, at most 60
// characters). It reads the reply only until the title's line is complete
// (or maxTitleReply bytes of it) and closes the stream then. With a demo model, or when the call fails or
// returns nothing usable, it falls back to FallbackTitle(prompt). It never
// returns an empty string. What model says of the model's bounds
// (MaxOutputTokens, ContextTokens) lowers the tokens asked for
// (titleTokens), so that an upstream enforcing them takes the request.
func (t *Titler) TitleFor(ctx context.Context, model ModelInfo, prompt, answer string) string {
	if t.Streamer == nil {
		return FallbackTitle(prompt)
	}
	if d, ok := t.Streamer.(demoer); ok && d.IsDemo(model.ID) {
		return FallbackTitle(prompt)
	}
	ctx, cancel := context.WithTimeout(ctx, positiveOr(t.Timeout, 30*time.Second))
	defer cancel()
	req := t.request(model, prompt, answer)
	reply, err := t.ask(ctx, req)
	if KindOf(err) == KindBadRequest && req.ReasoningEffort != "" && sendsEffort(ctx, t.Streamer, model.ID) {
		// A reasoning model without this effort (gpt-5-pro, o1-mini).
		req.ReasoningEffort = ""
		reply, err = t.ask(ctx, req)
	}
	title := CleanTitle(reply)
	if err != nil || title == "" {
		t.logger().Debug("llm title fallback", "model", model.ID, "err", err)
		return FallbackTitle(prompt)
	}
	return title
}

// request is the title request of a first exchange.
func (t *Titler) request(model ModelInfo, prompt, answer string) Request {
	req := Request{Model: model.ID, ReasoningEffort: t.ReasoningEffort, Messages: []Message{
		{Role: RoleSystem, Content: titleSystemPrompt},
		{Role: RoleUser, Content: "User message:\n" + shorten(prompt, 1500) + "\n\nAssistant answer:\n" + shorten(answer, 1500)},
	}}
	req.MaxTokens = titleTokens(t.MaxTokens, model, EstimatePrompt(req.Messages))
	if req.ReasoningEffort == "" {
		req.ReasoningEffort = "low"
	}
	// Reasoning is dropped, but counts as the stream having started: a
	// request cut after it is not sent (and paid for) again.
	req.OnReasoning = func(string) {}
	return req
}

// titlePriming is the margin kept in a model's window beside the title
// request's prompt and answer, as the hub keeps for an answer's priming.
const titlePriming = 16

// titleTokens is the max tokens of a title request whose prompt is
// estimated at prompt tokens: maxTokens (DefaultTitleTokens when not
// positive), lowered to the model's MaxOutputTokens, and to what its
// context window (ContextTokens) leaves after the prompt and a margin,
// when either is known and smaller: an upstream that counts the max
// tokens into the window (vLLM, TGI) or bounds them refuses more, and
// the title would fall back to the prompt's first words. A window the
// prompt fills alone leaves the tokens as they are (the upstream decides).
func titleTokens(maxTokens int, model ModelInfo, prompt int) int {
	if maxTokens <= 0 {
		maxTokens = DefaultTitleTokens
	}
	if model.MaxOutputTokens > 0 {
		maxTokens = min(maxTokens, model.MaxOutputTokens)
	}
	if room := model.ContextTokens - prompt - titlePriming; model.ContextTokens > 0 && room >= 1 {
		maxTokens = min(maxTokens, room)
	}
	return maxTokens
}

// ask streams req and returns the reply, closing the stream as soon as
// the reply holds a whole title line, or maxTitleReply bytes (thinking
// that long leaves no title to read in what is kept): a stream closed so
// is no error.
func (t *Titler) ask(ctx context.Context, req Request) (string, error) {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var b strings.Builder
	enough := false
	_, err := t.Streamer.Stream(ctx, req, func(s string) {
		if enough {
			return
		}
		b.WriteString(s)
		if enough = b.Len() >= maxTitleReply || titleComplete(b.String()); enough {
			stop()
		}
	})
	if enough {
		err = nil
	}
	return b.String(), err
}

// titleComplete reports whether a reply so far holds its whole title
// line: after any <think>…</think> block, a non-empty line that is not
// only a "Title:" label, ended by a line break, or titleReadChars
// characters.
func titleComplete(reply string) bool {
	s := strings.TrimLeftFunc(reply, unicode.IsSpace)
	if rest, ok := strings.CutPrefix(s, "<think>"); ok {
		_, after, closed := strings.Cut(rest, "</think>")
		if !closed {
			return false
		}
		s = after
	}
	for {
		line, rest, ended := strings.Cut(s, "\n")
		if !ended {
			return utf8.RuneCountInString(strings.TrimLeftFunc(s, unicode.IsSpace)) >= titleReadChars
		}
		if !skippedLine(line) {
			return true
		}
		s = rest
	}
}

// skippedLine reports a line of a title reply that holds no title: blank,
// or only a "Title:" label (the title follows on the next line).
func skippedLine(line string) bool {
	line = strings.Join(strings.Fields(line), " ")
	label, rest, ok := strings.Cut(line, ":")
	return line == "" || ok && strings.EqualFold(strings.Trim(label, labelMarks), "title") &&
		strings.Trim(rest, labelMarks) == ""
}

// labelMarks are the markdown around a "Title:" label.
const labelMarks = " *#_`"

func (t *Titler) logger() *slog.Logger {
	if t.Logger != nil {
		return t.Logger
	}
	return slog.Default()
}

func positiveOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// CleanTitle turns a model's reply into a title: its first non-empty line
// after a leading <think>…</think> block (a line that is only a "Title:"
// label is skipped: the title follows it), without a "Title:" label,
// markdown, quotes, final punctuation, control characters, invalid UTF-8
// (see printable) and the format characters a title may not hold
// (TitleProblem: what the API refuses in a title a user gives), at most
// 60 characters cut at a word boundary, or between whole user-perceived
// characters (see cutWords). It returns "" when nothing is left (a reply
// that is only thinking, or thinking cut short by the token limit).
func CleanTitle(s string) string {
	s = PlainText(skipThinking(s))
	lines := strings.Split(s, "\n")
	s = ""
	for _, line := range lines {
		if !skippedLine(line) {
			s = strings.TrimSpace(line)
			break
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if label, rest, ok := strings.Cut(s, ":"); ok && strings.EqualFold(strings.Trim(label, "*# "), "title") {
		s = rest
	}
	s = strings.TrimLeft(s, " \t*#_`\"'“”‘’«»「『")
	s = strings.TrimRightFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(".!?,;:。！？，；：…*_`\"'“”‘’«»」』", r)
	})
	return cutWords(s, maxTitleChars, 0)
}

// printable returns s without invalid UTF-8, control characters other
// than white space (escape sequences, NUL) and bidirectional formatting
// characters (an override would turn the rest of a title, in the list of
// conversations, right to left). Joiners stay: emoji sequences and
// several scripts need them.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return r
		case r == utf8.RuneError, unicode.Is(unicode.Cc, r), unicode.Is(unicode.Bidi_Control, r):
			return -1
		}
		return r
	}, s)
}

// skipThinking returns s without a leading <think>…</think> block, which
// models that think inline (DeepSeek-R1, QwQ served without a reasoning
// parser) put before their answer; an unterminated block leaves nothing.
// Thinking whose <think> the model's template wrote (only </think> in the
// reply) is not recognised here: the OpenAI client takes it for
// reasoning, which a title drops, when the model is declared so
// (openai.ThinkOpen).
func skipThinking(s string) string {
	rest, ok := strings.CutPrefix(strings.TrimLeftFunc(s, unicode.IsSpace), "<think>")
	if !ok {
		return s
	}
	_, after, closed := strings.Cut(rest, "</think>")
	if !closed {
		return ""
	}
	return after
}

// FallbackTitle names a conversation after the first words of its prompt:
// one line of printable characters (those a title may hold:
// TitleProblem), at most 6 words and 50 characters, cut at a word boundary,
// or between whole user-perceived characters within a long first word
// (see cutWords), with "…" when cut. An empty prompt gives "New chat".
func FallbackTitle(prompt string) string {
	s := strings.TrimLeft(strings.Join(strings.Fields(PlainText(prompt)), " "), "#>*-` ")
	if s == "" {
		return "New chat"
	}
	return cutWords(s, maxFallbackChars, maxFallbackWords)
}

// cutWords shortens a single-line s to at most maxChars characters and
// maxWords words (0: any), at a word boundary when there is one (else
// within its first word, between whole user-perceived characters: see
// CutText, so that no title ends in half a flag or in a flag's tags without
// their cancel tag), ending with "…" when it cut.
func cutWords(s string, maxChars, maxWords int) string {
	words := strings.Fields(s)
	whole := strings.Join(words, " ")
	if (maxWords == 0 || len(words) <= maxWords) && utf8.RuneCountInString(whole) <= maxChars {
		return whole
	}
	if maxWords > 0 && len(words) > maxWords {
		words = words[:maxWords]
	}
	limit := maxChars - 1 // room for the ellipsis
	out := ""
	for i, w := range words {
		next := w
		if i > 0 {
			next = out + " " + w
		}
		if utf8.RuneCountInString(next) > limit {
			if i == 0 {
				out = CutText(w, limit)
			}
			break
		}
		out = next
	}
	return strings.TrimRightFunc(out, func(r rune) bool { return unicode.IsPunct(r) || unicode.IsSpace(r) }) + "…"
}
