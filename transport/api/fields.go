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
	MaxModelChars        = protocol.MaxModelChars // as the live channel's send and regenerate
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
// named model is in the catalog (a model named otherwise than by its id,
// "upstream/name", becomes its id).
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
		id, err := checkModel(ctx, catalog, *f.Model)
		f.Model = &id
		return err
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
// would make it display as other text than it holds (llm.TitleProblem).
func checkTitle(t string) error {
	if err := checkText("title", t, MaxTitleChars, false); err != nil {
		return err
	}
	if r, bad := llm.TitleProblem(t); bad {
		return httperr.InvalidField("title", fmt.Sprintf("must not contain %U, a format, bidirectional or line separator character", r))
	}
	return nil
}

// checkModel accepts "" (the default model) and the models the catalog
// lists, named by their ids or by another name the catalog knows
// (llm.Resolver: "upstream/name"); it returns the model's id.
func checkModel(ctx context.Context, catalog llm.Catalog, model string) (string, error) {
	if err := checkText("model", model, MaxModelChars, false); err != nil || model == "" || catalog == nil {
		return model, err
	}
	models, err := catalog.Models(ctx)
	if err != nil {
		return model, httperr.Unavailable("the model list is unavailable; retry", fmt.Errorf("list models: %w", err))
	}
	if id, ok := llm.ResolveModel(ctx, catalog, models, model); ok {
		return id, nil
	}
	return model, httperr.InvalidField("model", fmt.Sprintf("unknown model %q; see GET /api/models", model))
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
