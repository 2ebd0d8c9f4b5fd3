package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"chatd/internal/lograte"
	"chatd/llm"
	"chatd/persistence"
	"chatd/transport/auth"
	"chatd/transport/httperr"
	"chatd/transport/internal/inflight"
	"chatd/transport/internal/reqtimeout"
	"chatd/transport/limits"
)

// ConversationStore is what the conversation routes need from the store.
type ConversationStore interface {
	CreateConversation(ctx context.Context, c *persistence.Conversation) error
	ConversationByClientID(ctx context.Context, ownerID, clientID string) (persistence.Conversation, error)
	Conversation(ctx context.Context, ownerID, id string) (persistence.Conversation, error)
	ListConversations(ctx context.Context, ownerID string, q persistence.ListQuery) (persistence.ConversationPage, error)
	UpdateConversation(ctx context.Context, ownerID, id string, p persistence.ConversationPatch) (persistence.Conversation, error)
	DeleteConversation(ctx context.Context, ownerID, id string) error
	MessagePage(ctx context.Context, ownerID, conversationID string, q persistence.PageQuery) (persistence.MessagePage, error)
	MessageOutline(ctx context.Context, ownerID, conversationID string) ([]persistence.Message, error)
	ReadContent(ctx context.Context, ownerID, id string, fn func(piece string) error) error
	ReadReasoning(ctx context.Context, ownerID, id string, fn func(piece string) error) error
}

// ConversationOptions configure the conversation routes.
type ConversationOptions struct {
	// Live is the hub; it defaults to NoLive.
	Live Live
	// Catalog, when set, is checked for the model a conversation names.
	Catalog llm.Catalog
	// Creations is the users' budget of new conversations, spent by each
	// POST /api/conversations that may create one (not by a repeat of a
	// clientId the user's conversations hold); past it the request gets
	// 429 with Retry-After. Share it with the live transports, whose sends
	// without a conversation spend it too (limits.Users). It defaults to a
	// budget of these routes' own, with limits.New's defaults.
	Creations CreationBudget
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// SearchesPerMinute bounds each user's searches (list requests with q);
	// beyond it they get 429 with Retry-After. It defaults to
	// DefaultSearchesPerMinute; a negative value removes the bound.
	SearchesPerMinute int
	// SharedSearches, when set, also holds SearchesPerMinute for each user
	// across every instance of a cluster (limits.Shared, budget
	// BudgetSearches); nil keeps it per process. A search refused after
	// its budget was taken (a cursor the store does not know) gives it
	// back there too.
	SharedSearches limits.BudgetGiver
	// EditsPerMinute bounds each user's changes and deletions of
	// conversations (PATCH and DELETE /api/conversations/:id), with a
	// burst of as many: each is a store write and a conversation frame to
	// every tab of the user (in a cluster, an event on NATS too). Beyond
	// it they get 429 with Retry-After. It defaults to
	// DefaultEditsPerMinute; a negative value removes the bound.
	EditsPerMinute int
	// SharedEdits, when set, also holds EditsPerMinute for each user
	// across every instance of a cluster (limits.Shared, budget
	// BudgetEdits); nil keeps it per process.
	SharedEdits limits.Budgets
	// RequestTimeout bounds the work of each request of these routes but
	// the export: its context ends after it, so a store that does not
	// answer makes the request fail with 503 unavailable (and Retry-After)
	// instead of holding it, and its connection, for as long as the store
	// hangs. It defaults to DefaultRequestTimeout. An export, which
	// streams a conversation of any length to a reader of any speed, is
	// bounded by it until its first bytes are sent (its waits on the
	// store before them share the request's one deadline), then in each
	// of its waits on the store on its own (the writes by the response's
	// write timeout).
	RequestTimeout time.Duration
}

// CreationBudget is a per-user budget of new conversations (limits.Users).
type CreationBudget interface {
	// SpendConversation spends one of the user's creations, which the
	// returned Spent gives back for a request that then creates nothing,
	// or refuses it saying how long to wait for the next.
	SpendConversation(userID string) (limits.Spent, *limits.Refusal)
}

// DefaultRequestTimeout is the default ConversationOptions.RequestTimeout,
// the bound of the live channel's frames and event streams' requests too.
const DefaultRequestTimeout = 30 * time.Second

// BudgetSearches names the searches' budget in ConversationOptions.SharedSearches.
const BudgetSearches = "searches"

// DefaultSearchesPerMinute is the default ConversationOptions.SearchesPerMinute.
const DefaultSearchesPerMinute = 30

// Conversations serves /api/conversations.
type Conversations struct {
	store     ConversationStore
	live      Live
	creations CreationBudget
	catalog   llm.Catalog
	logger    *slog.Logger
	sharedLog *slog.Logger // logger's, each failure of shared once per lograte.DefaultEvery
	searches  *userRate    // nil: unbounded
	shared    limits.BudgetGiver
	perMin    int // searches per minute
	timeout   time.Duration
	sendEvery time.Duration // see exportSendEvery
	creating  inflight.Keys // users' clientIds of creations being handled
	searching inflight.Keys // users whose search the store is running (searchTurn)
	edits     *userRate     // nil: unbounded (edits.go)
	sharedEd  limits.Budgets
	editsMin  int // edits per minute
}

// NewConversations returns the conversation routes over store.
func NewConversations(store ConversationStore, opts ConversationOptions) *Conversations {
	if opts.Live == nil {
		opts.Live = NoLive{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SearchesPerMinute == 0 {
		opts.SearchesPerMinute = DefaultSearchesPerMinute
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.Creations == nil {
		opts.Creations = limits.New(limits.Options{Logger: opts.Logger})
	}
	h := &Conversations{store: store, live: opts.Live, creations: opts.Creations, catalog: opts.Catalog, logger: opts.Logger,
		sharedLog: lograte.Logger(opts.Logger), shared: opts.SharedSearches, perMin: opts.SearchesPerMinute,
		timeout: opts.RequestTimeout, sendEvery: exportSendEvery}
	if opts.SearchesPerMinute > 0 {
		h.searches = newUserRate(opts.SearchesPerMinute, time.Minute)
	}
	if opts.EditsPerMinute == 0 {
		opts.EditsPerMinute = DefaultEditsPerMinute
	}
	if opts.EditsPerMinute > 0 {
		h.edits, h.sharedEd, h.editsMin = newUserRate(opts.EditsPerMinute, time.Minute), opts.SharedEdits, opts.EditsPerMinute
	}
	return h
}

// Routes registers the routes on authed, the /api group behind the
// authentication middleware.
func (h *Conversations) Routes(authed gin.IRouter) {
	g := authed.Group("/conversations")
	b := g.Group("", reqtimeout.Middleware(h.timeout))
	b.GET("", h.list)
	b.POST("", h.create)
	b.GET("/:id", h.get)
	b.GET("/:id/messages", h.messages)
	b.PATCH("/:id", h.update)
	b.DELETE("/:id", h.delete)
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
	give, ok := h.spendSearch(c, q)
	if !ok {
		return
	}
	done, err := h.searchTurn(c.Request.Context(), ownerID(c), q)
	if err != nil {
		httperr.AbortError(c, err)
		return
	}
	defer done()
	page, err := h.store.ListConversations(c.Request.Context(), ownerID(c), q)
	if err != nil {
		if errors.Is(err, persistence.ErrInvalidCursor) {
			give() // refused: the search did not happen
		}
		httperr.AbortError(c, storeError(err, "list conversations"))
		return
	}
	if page.Conversations == nil {
		page.Conversations = []persistence.Conversation{}
	}
	c.JSON(http.StatusOK, listPage{Conversations: page.Conversations, NextCursor: page.NextCursor})
}

// spendSearch spends one of the user's searches for q, when it is one, of
// this process and of the cluster (SharedSearches), or answers 429 and
// returns false. A search the cluster refuses gives this process's back.
// give gives both back, for a search then refused: every field of the
// request is checked before (listQuery) but the cursor, whose form only
// the store knows. Such a search holds its budget only while the store
// reads the cursor: once refused, the user's budgets are as they were,
// however many are sent at once.
func (h *Conversations) spendSearch(c *gin.Context, q persistence.ListQuery) (give func(), ok bool) {
	if q.Search == "" || h.searches == nil {
		return func() {}, true
	}
	user := ownerID(c)
	wait, ok := h.searches.take(user, time.Now())
	if !ok {
		httperr.AbortError(c, httperr.RateLimited("too many searches; try again in a moment", wait))
		return nil, false
	}
	wait, ok, giveShared := limits.SpendBudget(h.shared, limits.DefaultSharedTimeout, h.sharedLog, BudgetSearches, user, h.perMin)
	if !ok {
		h.searches.give(user, time.Now())
		httperr.AbortError(c, httperr.RateLimited("too many searches; try again in a moment", wait))
		return nil, false
	}
	return func() {
		giveShared()
		h.searches.give(user, time.Now())
	}, true
}

// searchTurn waits until none of the user's other searches is running in
// this process, bounded by ctx (the request's deadline: then 503), and
// returns the function that ends this one's turn; a list without q takes
// no turn. A search reads every message of the user's in the worst case
// (a query shorter than the index's trigrams, a corpus of long texts:
// seconds), so one user's searches run one at a time: a burst of them
// waits in turn instead of taking every one of the store's readers. The
// web client sends a search after each pause in typing without aborting
// the one before, whose answer it ignores; the newer waits for it rather
// than being refused, which would leave the list showing an error. The
// turns are this process's: on two instances of a cluster a user's
// searches may run one on each.
func (h *Conversations) searchTurn(ctx context.Context, user string, q persistence.ListQuery) (done func(), err error) {
	if q.Search == "" {
		return func() {}, nil
	}
	done, err = h.searching.Claim(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("wait for the user's search before: %w", err)
	}
	return done, nil
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
		return q, httperr.InvalidField("cursor", invalidCursor)
	}
	if !utf8.ValidString(q.Search) {
		return q, httperr.InvalidField("q", "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(q.Search); n > MaxQueryChars {
		return q, httperr.InvalidField("q", fmt.Sprintf("must be at most %d characters (got %d)", MaxQueryChars, n))
	}
	return q, nil
}

// conversationBody is the answer holding one conversation.
type conversationBody struct {
	Conversation persistence.Conversation `json:"conversation"`
}

// create stores a new conversation (201), spending one of the user's
// creations once the body is valid; a creation the store refuses or fails
// gives it back. A body with a clientId the user's conversations already hold
// stores nothing and spends nothing: that conversation is answered with
// 200, so a creation retried after a lost answer, or sent twice at once,
// makes one conversation: a creation whose clientId another request of
// the user is creating waits for it (on one instance; see claimCreation).
func (h *Conversations) create(c *gin.Context) {
	var f createFields
	if err := httperr.DecodeOptionalJSON(c.Request, &f); err != nil {
		httperr.AbortError(c, err)
		return
	}
	w, err := f.validate(c.Request.Context(), h.catalog)
	if err != nil {
		httperr.AbortError(c, err)
		return
	}
	release, ok := h.claimCreation(c, f.ClientID)
	if !ok {
		return
	}
	defer release()
	if h.repeated(c, f.ClientID) {
		return
	}
	conv := persistence.Conversation{OwnerID: ownerID(c), ClientID: f.ClientID}
	if w.Title != nil {
		conv.Title = *w.Title
	}
	if w.Model != nil {
		conv.Model = *w.Model
	}
	if conv.Model == "" {
		conv.Model = h.defaultModel(c.Request.Context())
	}
	if w.SystemPrompt != nil {
		conv.SystemPrompt = *w.SystemPrompt
	}
	if err := checkParams(c.Request.Context(), h.catalog, conv.Model, w.Params); err != nil {
		httperr.AbortError(c, err)
		return
	}
	if !w.Params.IsZero() {
		conv.Params = w.Params
	}
	spent, r := h.creations.SpendConversation(ownerID(c))
	if r != nil {
		httperr.AbortError(c, httperr.RateLimited("too many new conversations; wait a moment", r.Wait))
		return
	}
	if err := h.store.CreateConversation(c.Request.Context(), &conv); err != nil {
		spent.Give() // nothing created
		if errors.Is(err, persistence.ErrDuplicate) && f.ClientID != "" {
			h.created(c, f.ClientID)
			return
		}
		if errors.Is(err, persistence.ErrUnknownOwner) {
			// The account was deleted after this request's token was
			// checked: the same answer as for a revoked token.
			auth.AbortAuthError(c, fmt.Errorf("%w: %w", auth.ErrUnauthorized, err))
			return
		}
		httperr.AbortError(c, storeError(err, "create conversation"))
		return
	}
	h.live.ConversationChanged(conv.OwnerID, ActionCreated, conv)
	c.JSON(http.StatusCreated, conversationBody{conv})
}

// claimCreation waits, bounded by the request's context, while another
// request of the user with clientID is being handled, then claims the
// key: the second of two requests sent at once with a new key finds the
// first's conversation (repeated) and spends no budget. Requests on two
// instances of a cluster are not ordered: both may spend, though one
// conversation is made (the unique index decides, and create answers the
// loser 200). A wait that runs out is answered 503.
func (h *Conversations) claimCreation(c *gin.Context, clientID string) (release func(), ok bool) {
	if clientID == "" {
		return func() {}, true
	}
	release, err := h.creating.Claim(c.Request.Context(), inflight.Key(ownerID(c), clientID))
	if err != nil {
		httperr.AbortError(c, httperr.Unavailable("an earlier creation with this clientId is still being handled; retry", err))
		return nil, false
	}
	return release, true
}

// repeated answers a creation whose clientId the user's conversations
// already hold with that conversation (200), before it spends any budget,
// and reports whether it answered. A new key costs this one indexed read;
// requests without a key cost none.
func (h *Conversations) repeated(c *gin.Context, clientID string) bool {
	if clientID == "" {
		return false
	}
	conv, err := h.store.ConversationByClientID(c.Request.Context(), ownerID(c), clientID)
	if errors.Is(err, persistence.ErrNotFound) {
		return false
	}
	if err != nil {
		httperr.AbortError(c, storeError(err, "find the conversation of a clientId"))
		return true
	}
	c.JSON(http.StatusOK, conversationBody{conv})
	return true
}

// created answers a repeated creation with the conversation the user's
// first request with clientID made (200; the tabs were told when it was
// created). One deleted meanwhile answers 409: the key is free again, and
// a retry creates anew.
func (h *Conversations) created(c *gin.Context, clientID string) {
	if !h.repeated(c, clientID) {
		httperr.AbortError(c, httperr.Conflict("the conversation of this clientId was deleted meanwhile; retry"))
	}
}

// readFields decodes and validates a create or patch body; an empty body
// counts as {} .
func (h *Conversations) readFields(c *gin.Context, f *fields) error {
	if err := httperr.DecodeOptionalJSON(c.Request, f); err != nil {
		return err
	}
	return f.validate(c.Request.Context(), h.catalog)
}

// thread is the answer to GET /api/conversations/:id: the conversation and
// its newest messages (oldest first; at most persistence.DefaultPageBytes
// of text, or the newest message alone); hasMore says older ones exist
// (GET /api/conversations/:id/messages?before= pages back).
type thread struct {
	Conversation    persistence.Conversation `json:"conversation"`
	Messages        []persistence.Message    `json:"messages"`
	HasMore         bool                     `json:"hasMore"`
	ActiveMessageID string                   `json:"activeMessageId"`
}

func (h *Conversations) get(c *gin.Context) {
	id, ok := conversationID(c)
	if !ok {
		return
	}
	q, err := pageQuery(c, false)
	if err != nil {
		httperr.AbortError(c, err)
		return
	}
	ctx, owner := c.Request.Context(), ownerID(c)
	// The running answer is read before the messages: the hub stores an
	// answer's message before reporting it running, so the id it names is
	// in the list. The conversation is read with them (persistence.ReadPage:
	// two round trips on MongoDB, where Conversation then MessagePage took
	// three); ActiveAnswer answers "" for a conversation the user does not
	// have.
	active := h.live.ActiveAnswer(ctx, owner, id)
	conv, page, err := persistence.ReadPage(ctx, h.store, owner, id, q)
	if errors.Is(err, persistence.ErrNotFound) {
		// Not found where the store reads by default (a MongoDB replica may
		// lag behind a conversation created a moment ago, which the tab
		// that made it reads at once): a 404 says the conversation is gone,
		// and a client forgets it, so the latest state decides.
		conv, page, err = persistence.ReadPage(persistence.WithLatest(ctx), h.store, owner, id, q)
	}
	if err != nil {
		httperr.AbortError(c, storeError(err, "load conversation "+id+" and its messages"))
		return
	}
	c.JSON(http.StatusOK, thread{Conversation: conv, Messages: page.Messages, HasMore: page.HasMore, ActiveMessageID: active})
}

// messagePage is the answer to GET /api/conversations/:id/messages.
type messagePage struct {
	Messages []persistence.Message `json:"messages"`
	HasMore  bool                  `json:"hasMore"`
}

// messages pages back through a conversation: the messages created before
// ?before= (a message id), newest ?limit= of them, oldest first, fewer
// past persistence.DefaultPageBytes of text (hasMore then says so).
func (h *Conversations) messages(c *gin.Context) {
	id, ok := conversationID(c)
	if !ok {
		return
	}
	q, err := pageQuery(c, true)
	if err != nil {
		httperr.AbortError(c, err)
		return
	}
	page, err := h.store.MessagePage(c.Request.Context(), ownerID(c), id, q)
	if errors.Is(err, persistence.ErrNotFound) { // as get: the latest state decides a 404
		page, err = h.store.MessagePage(persistence.WithLatest(c.Request.Context()), ownerID(c), id, q)
	}
	if errors.Is(err, persistence.ErrNotFound) && q.Before != "" {
		httperr.AbortError(c, httperr.NotFound("conversation or message not found"))
		return
	}
	if err != nil {
		httperr.AbortError(c, storeError(err, "load messages of "+id))
		return
	}
	c.JSON(http.StatusOK, messagePage{Messages: page.Messages, HasMore: page.HasMore})
}

// pageQuery reads limit (1..500, default 200) and, when withBefore, before.
func pageQuery(c *gin.Context, withBefore bool) (persistence.PageQuery, error) {
	var q persistence.PageQuery
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > persistence.MaxPageLimit {
			return q, httperr.InvalidField("limit", fmt.Sprintf("must be a whole number from 1 to %d", persistence.MaxPageLimit))
		}
		q.Limit = n
	}
	if withBefore {
		q.Before = c.Query("before")
		if q.Before != "" && !persistence.ValidID(q.Before) {
			return q, httperr.InvalidField("before", "must be a message id")
		}
	}
	return q, nil
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
	if f.Model != nil && *f.Model == "" {
		// "" is the default model, stored as a creation stores it.
		model := h.defaultModel(c.Request.Context())
		f.Model = &model
	}
	owner := ownerID(c)
	// A request refused 400, for its params too, spends no edit; one for
	// a conversation the user does not have (404) spends one, whether its
	// params had it read or the write finds it missing: another user's id
	// answers as an unknown one.
	err := h.checkPatchParams(c, owner, id, &f)
	if badRequest(err) {
		httperr.AbortError(c, err)
		return
	}
	if !h.spendEdit(c, owner) {
		return
	}
	if err != nil {
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

// load reads the caller's conversation id with ctx (the request's, or
// one asking for the latest state), or answers the request with what the
// store said (another user's id is not found); ok is false then.
func (h *Conversations) load(ctx context.Context, c *gin.Context, owner, id string) (conv persistence.Conversation, ok bool) {
	conv, err := h.store.Conversation(ctx, owner, id)
	if err != nil {
		httperr.AbortError(c, storeError(err, "load conversation "+id))
		return conv, false
	}
	return conv, true
}

func (h *Conversations) delete(c *gin.Context) {
	id, ok := conversationID(c)
	if !ok {
		return
	}
	ctx, owner := c.Request.Context(), ownerID(c)
	if !h.spendEdit(c, owner) {
		return
	}
	// The latest state (persistence.WithLatest): a replica lagging behind
	// a conversation created a moment ago would refuse its deletion.
	conv, ok := h.load(persistence.WithLatest(ctx), c, owner, id)
	if !ok {
		return
	}
	h.live.CancelConversation(owner, id)
	if err := h.store.DeleteConversation(ctx, owner, id); err != nil {
		httperr.AbortError(c, storeError(err, "delete conversation "+id))
		return
	}
	// The id alone: the deleted title and system prompt go to no tab,
	// nor over NATS into the cluster's events stream.
	h.live.ConversationChanged(owner, ActionDeleted, persistence.Conversation{ID: conv.ID})
	c.Status(http.StatusNoContent)
}
