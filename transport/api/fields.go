package api

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
	"chatd/transport/httperr"
)

// Field limits from docs/api.md.
const (
	MaxTitleChars        = 200
	MaxSystemPromptChars = 8000
	MaxModelChars        = 200
	MaxQueryChars        = 200
	MaxCursorBytes       = 1024
	// MaxClientIDChars bounds a creation's clientId, as the live
	// channel's send bounds its clientMessageId (protocol.KeyProblem).
	MaxClientIDChars = protocol.MaxKeyChars
)

// fields are the writable fields of a conversation; nil means "not given".
type fields struct {
	Title        *string `json:"title"`
	Model        *string `json:"model"`
	SystemPrompt *string `json:"systemPrompt"`
	// Params replaces the conversation's sampling parameters (checked by
	// checkParams once the model is known).
	Params *persistence.Params `json:"params"`
}

// validate checks and normalises f (titles are trimmed) and checks that a
// named model is in the catalog.
func (f *fields) validate(ctx context.Context, catalog llm.Catalog) error {
	if f.Title != nil {
		t := strings.TrimSpace(*f.Title)
		f.Title = &t
		if err := checkTitle(t); err != nil {
			return err
		}
	}
	if f.SystemPrompt != nil {
		if err := checkText("systemPrompt", *f.SystemPrompt, MaxSystemPromptChars, true); err != nil {
			return err
		}
	}
	if f.Model != nil {
		return checkModel(ctx, catalog, *f.Model)
	}
	return nil
}

// createFields are the body of POST /api/conversations: the writable
// fields and the creation's idempotency key. The writable fields are
// spelled out rather than embedded: json names a field of an embedded
// struct by its Go type too, so a value of the wrong type was refused as
// "fields.title: must be a string", naming no field of the API.
type createFields struct {
	Title        *string             `json:"title"`
	Model        *string             `json:"model"`
	SystemPrompt *string             `json:"systemPrompt"`
	Params       *persistence.Params `json:"params"`
	// ClientID, when not empty, makes the creation idempotent: the
	// user's conversation created with it is answered instead of a new one.
	ClientID string `json:"clientId"`
}

// validate checks the key (protocol.KeyProblem: at most
// MaxClientIDChars visible ASCII characters, as a send's clientMessageId)
// and the writable fields, which it returns normalised.
func (f *createFields) validate(ctx context.Context, catalog llm.Catalog) (fields, error) {
	w := fields{Title: f.Title, Model: f.Model, SystemPrompt: f.SystemPrompt, Params: f.Params}
	if p := protocol.KeyProblem(f.ClientID); p != "" {
		return w, httperr.InvalidField("clientId", p)
	}
	err := w.validate(ctx, catalog)
	return w, err
}

func (f *fields) empty() bool {
	return f.Title == nil && f.Model == nil && f.SystemPrompt == nil && f.Params == nil
}

func (f *fields) patch() persistence.ConversationPatch {
	return persistence.ConversationPatch{Title: f.Title, Model: f.Model, SystemPrompt: f.SystemPrompt, Params: f.Params}
}

// checkText checks a text field's length (in characters) and that it holds
// no control characters (other than newlines and tabs when multiline).
func checkText(name, s string, maxChars int, multiline bool) error {
	if !utf8.ValidString(s) {
		return httperr.InvalidField(name, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > maxChars {
		return httperr.InvalidField(name, fmt.Sprintf("must be at most %d characters (got %d)", maxChars, n))
	}
	bad := strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r'))
	})
	if bad >= 0 {
		return httperr.InvalidField(name, "must not contain control characters")
	}
	return nil
}

// checkTitle checks a title: checkText's rules, and no character that
// would make it display as other text than it holds (titleProblem).
func checkTitle(t string) error {
	if err := checkText("title", t, MaxTitleChars, false); err != nil {
		return err
	}
	if r, bad := titleProblem(t); bad {
		return httperr.InvalidField("title", fmt.Sprintf("must not contain %U, a format, bidirectional or line separator character", r))
	}
	return nil
}

// Format characters (Unicode category Cf) a title may hold.
const (
	zwnj      = '\u200c' // zero-width non-joiner
	zwj       = '\u200d' // zero-width joiner
	blackFlag = '\U0001F3F4'
	cancelTag = '\U000E007F'
)

// titleProblem returns the first character of t that a title may not
// hold. A title is shown in lists beside other users' text, so it must not
// display as something else: the bidirectional controls (overrides such
// as U+202E, embeddings, isolates U+2066 to U+2069, and the marks LRM, RLM
// and ALM, refused in a user's name too) can reorder what follows them, and
// the other format characters are invisible (the zero-width space, the word
// joiner, the byte order mark, the soft hyphen, the tag characters) or hide
// text (the interlinear annotation characters): they are refused, as the
// line and paragraph separators are in a one-line title. Allowed are the
// format characters real text needs and that reorder or hide nothing: the
// zero-width non-joiner and joiner, which belong to the spelling of Persian
// and Indic words and join emoji sequences (woman, ZWJ, laptop: a woman
// technologist), anywhere, since emoji are no letters a context rule (as
// transport/auth's for emails) could ask for; the prepended concatenation
// marks of Arabic, Syriac and Kaithi (U+0600 to U+0605, ...), which are
// visible signs over the digits that follow; and tag characters only in an
// emoji tag sequence, a black flag followed by tags and the cancel tag (the
// flags of England, Scotland and Wales).
func titleProblem(t string) (rune, bool) {
	rs := []rune(t)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r == blackFlag {
			i = flagTagsEnd(rs, i+1) - 1
			continue
		}
		if unicode.In(r, unicode.Zl, unicode.Zp) {
			return r, true
		}
		if !unicode.Is(unicode.Cf, r) || r == zwnj || r == zwj || unicode.Is(unicode.Prepended_Concatenation_Mark, r) {
			continue
		}
		return r, true
	}
	return 0, false
}

// flagTagsEnd returns the index after the tags of an emoji tag sequence
// starting at rs[i] (tag characters U+E0020 to U+E007E ended by the cancel
// tag), or i when none starts there.
func flagTagsEnd(rs []rune, i int) int {
	j := i
	for j < len(rs) && rs[j] >= '\U000E0020' && rs[j] <= '\U000E007E' {
		j++
	}
	if j == i || j == len(rs) || rs[j] != cancelTag {
		return i
	}
	return j + 1
}

// checkModel accepts "" (the default model) and the ids the catalog lists.
func checkModel(ctx context.Context, catalog llm.Catalog, model string) error {
	if err := checkText("model", model, MaxModelChars, false); err != nil || model == "" || catalog == nil {
		return err
	}
	models, err := catalog.Models(ctx)
	if err != nil {
		return httperr.Unavailable("the model list is unavailable; retry", fmt.Errorf("list models: %w", err))
	}
	for _, m := range models {
		if m.ID == model {
			return nil
		}
	}
	return httperr.InvalidField("model", fmt.Sprintf("unknown model %q; see GET /api/models", model))
}

// defaultModel is the catalog's default model, which a conversation created
// without a model (or with "") stores, and one changed to "" too. It is "" without a catalog or when the list cannot
// be read: the hub then picks the default when the first message is sent.
func (h *Conversations) defaultModel(ctx context.Context) string {
	if h.catalog == nil {
		return ""
	}
	models, err := h.catalog.Models(ctx)
	if err != nil {
		h.logger.Warn("list models for a new conversation", slog.String("err", err.Error()))
		return ""
	}
	return llm.DefaultModel(models)
}
