package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"chatd/llm"
	"chatd/persistence"
	"chatd/transport/httperr"
)

// ConversationStore is what the conversation routes need from the store.
type ConversationStore interface {
	CreateConversation(ctx context.Context, c *persistence.Conversation) error
	Conversation(ctx context.Context, ownerID, id string) (persistence.Conversation, error)
	ListConversations(ctx context.Context, ownerID string, q persistence.ListQuery) (persistence.ConversationPage, error)
	UpdateConversation(ctx context.Context, ownerID, id string, p persistence.ConversationPatch) (persistence.Conversation, error)
	DeleteConversation(ctx context.Context, ownerID, id string) error
	Messages(ctx context.Context, ownerID, conversationID string) ([]persistence.Message, error)
}

// ConversationOptions configure the conversation routes.
type ConversationOptions struct {
	// Live is the hub; it defaults to NoLive.
	Live Live
	// Catalog, when set, is checked for the model a conversation names.
	Catalog llm.Catalog
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Conversations serves /api/conversations.
type Conversations struct {
	store   ConversationStore
	live    Live
	catalog llm.Catalog
	logger  *slog.Logger
}

// NewConversations returns the conversation routes over store.
func NewConversations(store ConversationStore, opts ConversationOptions) *Conversations {
	if opts.Live == nil {
		opts.Live = NoLive{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Conversations{store: store, live: opts.Live, catalog: opts.Catalog, logger: opts.Logger}
}

// Routes registers the routes on authed, the /api group behind the
// authentication middleware.
func (h *Conversations) Routes(authed gin.IRouter) {
	g := authed.Group("/conversations")
	g.GET("", h.list)
	g.POST("", h.create)
	g.GET("/:id", h.get)
	g.PATCH("/:id", h.update)
	g.DELETE("/:id", h.delete)
	g.GET("/:id/export", h.export)
}

// listPage is the answer to GET /api/conversations.
type listPage struct {
	Conversations []persistence.Conversation `json:"conversations"`
	NextCursor    string                     `json:"nextCursor"`
}

func (h *Conversations) list(c *gin.Context) {
	q, err := listQuery(c)
	if err != nil {
		httperr.AbortError(c, err)
		return
	}
	page, err := h.store.ListConversations(c.Request.Context(), ownerID(c), q)
	if err != nil {
		httperr.AbortError(c, storeError(err, "list conversations"))
		return
	}
	if page.Conversations == nil {
		page.Conversations = []persistence.Conversation{}
	}
	c.JSON(http.StatusOK, listPage{Conversations: page.Conversations, NextCursor: page.NextCursor})
}

// listQuery reads limit (1..100, default 30), cursor and q.
func listQuery(c *gin.Context) (persistence.ListQuery, error) {
	q := persistence.ListQuery{Cursor: c.Query("cursor"), Search: c.Query("q")}
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return q, httperr.InvalidField("limit", "must be a whole number from 1 to 100")
		}
		q.Limit = n
	}
	if len(q.Cursor) > MaxCursorBytes {
		return q, httperr.BadRequest("invalid cursor")
	}
	if !utf8.ValidString(q.Search) || utf8.RuneCountInString(q.Search) > MaxQueryChars {
		return q, httperr.InvalidField("q", "must be at most 200 characters")
	}
	return q, nil
}

// conversationBody is the answer holding one conversation.
type conversationBody struct {
	Conversation persistence.Conversation `json:"conversation"`
}

func (h *Conversations) create(c *gin.Context) {
	var f fields
	if err := h.readFields(c, &f); err != nil {
		httperr.AbortError(c, err)
		return
	}
	conv := persistence.Conversation{OwnerID: ownerID(c)}
	if f.Title != nil {
		conv.Title = *f.Title
	}
	if f.Model != nil {
		conv.Model = *f.Model
	}
	if conv.Model == "" {
		conv.Model = h.defaultModel(c.Request.Context())
	}
	if f.SystemPrompt != nil {
		conv.SystemPrompt = *f.SystemPrompt
	}
	if err := checkParams(c.Request.Context(), h.catalog, conv.Model, f.Params); err != nil {
		httperr.AbortError(c, err)
		return
	}
	if !f.Params.IsZero() {
		conv.Params = f.Params
	}
	if err := h.store.CreateConversation(c.Request.Context(), &conv); err != nil {
		httperr.AbortError(c, storeError(err, "create conversation"))
		return
	}
	h.live.ConversationChanged(conv.OwnerID, ActionCreated, conv)
	c.JSON(http.StatusCreated, conversationBody{conv})
}

// readFields decodes and validates a create or patch body; an empty body
// counts as {} .
func (h *Conversations) readFields(c *gin.Context, f *fields) error {
	if c.Request.ContentLength != 0 {
		if err := httperr.DecodeJSON(c.Request, f); err != nil {
			return err
		}
	}
	return f.validate(c.Request.Context(), h.catalog)
}

// thread is the answer to GET /api/conversations/:id.
type thread struct {
	Conversation    persistence.Conversation `json:"conversation"`
	Messages        []persistence.Message    `json:"messages"`
	ActiveMessageID string                   `json:"activeMessageId"`
}

func (h *Conversations) get(c *gin.Context) {
	t, ok := h.loadThread(c)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, t)
}

// loadThread reads the :id conversation and all its messages, or answers
// the error and returns false.
func (h *Conversations) loadThread(c *gin.Context) (thread, bool) {
	id, ok := conversationID(c)
	if !ok {
		return thread{}, false
	}
	ctx, owner := c.Request.Context(), ownerID(c)
	conv, err := h.store.Conversation(ctx, owner, id)
	if err != nil {
		httperr.AbortError(c, storeError(err, "load conversation "+id))
		return thread{}, false
	}
	// The running answer is read before the messages: the hub stores an
	// answer's message before reporting it running, so the id it names is
	// in the list.
	active := h.live.ActiveMessageID(id)
	msgs, err := h.store.Messages(ctx, owner, id)
	if err != nil {
		httperr.AbortError(c, storeError(err, "load messages of "+id))
		return thread{}, false
	}
	if msgs == nil {
		msgs = []persistence.Message{}
	}
	return thread{Conversation: conv, Messages: msgs, ActiveMessageID: active}, true
}

func (h *Conversations) update(c *gin.Context) {
	id, ok := conversationID(c)
	if !ok {
		return
	}
	var f fields
	if err := h.readFields(c, &f); err != nil {
		httperr.AbortError(c, err)
		return
	}
	if f.empty() {
		httperr.AbortError(c, httperr.BadRequest("nothing to change: give title, model, systemPrompt or params"))
		return
	}
	owner := ownerID(c)
	if err := h.checkPatchParams(c, owner, id, &f); err != nil {
		httperr.AbortError(c, err)
		return
	}
	conv, err := h.store.UpdateConversation(c.Request.Context(), owner, id, f.patch())
	if err != nil {
		httperr.AbortError(c, storeError(err, "update conversation "+id))
		return
	}
	h.live.ConversationChanged(owner, ActionUpdated, conv)
	c.JSON(http.StatusOK, conversationBody{conv})
}

func (h *Conversations) delete(c *gin.Context) {
	id, ok := conversationID(c)
	if !ok {
		return
	}
	ctx, owner := c.Request.Context(), ownerID(c)
	conv, err := h.store.Conversation(ctx, owner, id)
	if err != nil {
		httperr.AbortError(c, storeError(err, "load conversation "+id))
		return
	}
	h.live.CancelConversation(owner, id)
	if err := h.store.DeleteConversation(ctx, owner, id); err != nil {
		httperr.AbortError(c, storeError(err, "delete conversation "+id))
		return
	}
	h.live.ConversationChanged(owner, ActionDeleted, conv)
	c.Status(http.StatusNoContent)
}
