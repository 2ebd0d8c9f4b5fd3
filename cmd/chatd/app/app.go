// Package app wires every part of chatd (store, batching writer, hub,
// accounts, REST API, WebSocket and SSE transports) into one HTTP handler
// with a lifecycle. cmd/chatd builds its Config from the environment; tests
// build one directly and serve App.Handler with httptest.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/hub"
	"chatd/internal/gate"
	"chatd/persistence"
	"chatd/persistence/batch"
	"chatd/transport"
	"chatd/transport/api"
	"chatd/transport/auth"
	"chatd/transport/httperr"
	"chatd/transport/limits"
	"chatd/transport/sse"
	"chatd/transport/ws"
)

// Config is everything App needs. Store, Model and Auth.Secret are required.
type Config struct {
	Store persistence.Store
	// Model answers; one that has a Close method (llm.Router: its
	// background model-list fetches) is closed by Shutdown once no answer
	// runs.
	Model  hub.Model
	Titler hub.Titler // nil: conversations keep no automatic title
	Logger *slog.Logger

	Auth     auth.Options
	Accounts auth.AccountOptions // OnLogout is set by App

	// AllowedOrigins lists browser origins besides the server's own host
	// that may open the WebSocket.
	AllowedOrigins []string
	// TrustedProxies are the addresses or CIDRs whose forwarded headers are believed.
	TrustedProxies []string
	BodyLimit      int64
	// BodyReadTimeout bounds the arrival of a request body (see
	// transport.RouterOptions); zero takes the default.
	BodyReadTimeout time.Duration
	// ResponseWriteTimeout bounds each piece of a REST response's write
	// (see transport.RouterOptions); zero takes the default.
	ResponseWriteTimeout time.Duration
	// RequestTimeout bounds how long one request waits on the server (the
	// store, in the end): a REST request (api.ConversationOptions), the
	// token check in front of every API request (auth.Options.CheckTimeout),
	// a WebSocket frame (ws.Options.DispatchTimeout), the start of an
	// event stream or answer over SSE (sse.Options.RequestTimeout) and the
	// account routes (auth.AccountOptions.RequestTimeout), each unless set
	// there. Past it: 503 unavailable, or an unavailable error
	// frame. Zero takes api.DefaultRequestTimeout (30 s).
	RequestTimeout time.Duration
	// AccountCheckInterval is how often the accounts of open live
	// connections are checked to still exist (auth.Watch); zero takes the default.
	AccountCheckInterval time.Duration
	// SearchesPerMinute bounds each user's conversation searches; 0 takes
	// api.DefaultSearchesPerMinute.
	SearchesPerMinute int
	// EditsPerMinute bounds each user's changes and deletions of
	// conversations; 0 takes api.DefaultEditsPerMinute.
	EditsPerMinute int
	Static         fs.FS
	Metrics        transport.MetricsOptions

	Hub    hub.Options    // Store, Writer, Model, Titler, Metrics and Logger are set by App
	Writer batch.Options  // Logger and Metrics are set by App when empty; OnFenced and OnDropped always
	WS     ws.Options     // Hub, Authenticate, Recheck, Origins, Limits, Metrics and Logger are set by App
	SSE    sse.Options    // Hub, Limits, Recheck, SentBefore and Logger are set by App, Metrics when nil
	Limits limits.Options // Shared is set by App from SharedLimits

	// Bus joins this instance to the others of a cluster (hub/natsbus);
	// nil runs one process alone (Hub.Bus is set from it). /readyz reports
	// it, and Shutdown closes it last.
	Bus Bus
	// SharedLimits counts each user's connections and sends across the
	// cluster; nil keeps the limits per process.
	SharedLimits limits.Shared
}

// Bus is the cluster bus as the app uses it: the hub's Bus, and Close,
// which ends this instance's membership once its answers are over.
type Bus interface {
	hub.Bus
	Close(ctx context.Context) error
}

// App is a wired server.
type App struct {
	cfg      Config
	handler  http.Handler
	hub      *hub.Hub
	writer   *batch.Writer
	ws       *ws.Handler
	sse      *sse.Handler
	health   *api.Health
	accounts *auth.Accounts // Shutdown waits for its deletions under way

	stopHub context.CancelFunc
	hubDone chan struct{}
	once    sync.Once
	err     error

	// endingUsers counts the account deletions ending their user's live
	// work (endUser's hub.EndUser) over the cluster bus. A cluster's drain
	// closes it before the hub stops its bus work: none starts from then
	// on (the deletion is refused), and those under way are waited for.
	endingUsers gate.Gate
}

// New wires an App and starts its background work (the hub's delta
// flusher and the batching writer); Shutdown ends it.
func New(cfg Config) (*App, error) {
	if cfg.Store == nil || cfg.Model == nil {
		return nil, errors.New("app: Store and Model are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = api.DefaultRequestTimeout
	}
	setTimeout(&cfg.Auth.CheckTimeout, cfg.RequestTimeout)
	setTimeout(&cfg.WS.DispatchTimeout, cfg.RequestTimeout)
	setTimeout(&cfg.SSE.RequestTimeout, cfg.RequestTimeout)
	setTimeout(&cfg.Accounts.RequestTimeout, cfg.RequestTimeout)
	authn, err := auth.NewAuthenticator(cfg.Store, cfg.Auth)
	if err != nil {
		return nil, err
	}
	metrics, err := newLiveMetrics(cfg.Metrics.Registerer)
	if err != nil {
		return nil, err
	}
	origins, err := originChecker(cfg)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, hubDone: make(chan struct{})}
	wo := writerOptions(cfg, metrics)
	// The writer tells the hub of an answer another instance ended (it is
	// only called for an answer the hub runs, so after a.hub is set).
	wo.OnFenced = func(id string) { a.hub.EndedElsewhere(id) }
	// And of an answer's final update it dropped after the hub's Finish
	// gave up waiting for it: the hub ends the answer.
	wo.OnDropped = func(id, owner string, err error) { a.hub.FinalDropped(id, owner, err) }
	a.writer = batch.New(cfg.Store, wo)
	// The writer runs from here: a step that fails ends it (and the hub)
	// before New returns.
	lim, err := a.wire(authn, origins, metrics)
	if err != nil {
		a.abandon()
		return nil, err
	}
	a.start(lim)
	return a, nil
}

// wire builds the hub, the transports and the router around the writer.
func (a *App) wire(authn *auth.Authenticator, origins *ws.OriginChecker, metrics *liveMetrics) (*limits.Users, error) {
	cfg := a.cfg
	if err := metrics.watchWriter(a.writer); err != nil {
		return nil, err
	}
	if cfg.Bus != nil {
		// Before the hub exists: the bus may call it as soon as it does.
		// The health is read at scrape time, once a.hub is set.
		if err := metrics.watchBus(func(ctx context.Context) error { return a.hub.BusHealth(ctx) }, busGaugesOf(cfg.Bus)); err != nil {
			return nil, err
		}
	}
	a.hub = hub.New(hubOptions(cfg, a.writer, metrics))
	limOpts := cfg.Limits
	limOpts.Shared = cfg.SharedLimits
	if limOpts.Logger == nil {
		limOpts.Logger = cfg.Logger
	}
	lim := limits.New(limOpts)
	a.ws = ws.NewHandler(wsOptions(cfg, a.hub, authn, origins, lim, metrics))
	sseOpts := cfg.SSE
	sseOpts.Hub, sseOpts.Limits, sseOpts.Logger, sseOpts.Recheck = a.hub, lim, cfg.Logger, authn.Recheck
	sseOpts.SentBefore = sentBefore(cfg.Store)
	if sseOpts.Metrics == nil {
		sseOpts.Metrics = metrics.sse()
	}
	a.sse = sse.NewHandler(sseOpts)
	var err error
	if a.handler, err = a.router(authn, lim); err != nil {
		return nil, err
	}
	return lim, nil
}

// abandon ends what a New that failed had started: the hub, already
// attached to the bus, is shut (what the bus delivers starts nothing), and the
// batching writer, which holds nothing yet, has stopped when it returns.
func (a *App) abandon() {
	ctx, cancel := context.WithTimeout(context.Background(), finalWritesTimeout)
	defer cancel()
	if a.hub != nil {
		if err := a.hub.Shutdown(ctx); err != nil {
			a.cfg.Logger.Warn("shut the hub of an app that failed to start", "err", err)
		}
	}
	if err := a.writer.Close(ctx); err != nil {
		a.cfg.Logger.Warn("close the writer of an app that failed to start", "err", err)
	}
}

// start runs the hub's delta flusher and the watch of removed accounts
// until Shutdown.
func (a *App) start(lim *limits.Users) {
	cfg := a.cfg
	ctx, cancel := context.WithCancel(context.Background())
	a.stopHub = cancel
	go func() {
		defer close(a.hubDone)
		var watch sync.WaitGroup // closes the live connections of removed accounts
		watch.Go(func() {
			auth.Watch(ctx, auth.WatchOptions{Users: cfg.Store, Connected: lim.ConnectedUsers,
				Close: a.hub.CloseUser, CloseRevoked: a.hub.CloseRevoked,
				Interval: cfg.AccountCheckInterval, Logger: cfg.Logger})
		})
		_ = a.hub.Run(ctx)
		watch.Wait()
	}()
}

// endUser ends the live work of a user whose account is being deleted:
// their connections everywhere, and the answers the store holds streaming
// in their conversations, each waited for. Those are read as the latest
// state (persistence.WithLatest): a lagging replica could miss an answer
// started a moment ago, which would then run on as the data is removed.
// Once a cluster's drain has begun to stop the bus (endingUsers closed),
// the close and the stops may not reach the other instances: it fails
// with errBusClosing before doing either, and the deletion removes
// nothing. Once begun, hub.EndUser is waited for by the drain, and never
// refused after it: its close has told every tab of the user that the
// account is deleted.
func (a *App) endUser(ctx context.Context, userID string) error {
	running, err := a.cfg.Store.StreamingConversations(persistence.WithLatest(ctx), userID)
	if err != nil {
		return fmt.Errorf("find the running answers of %s: %w", userID, err)
	}
	if !a.endingUsers.Enter() {
		return errBusClosing
	}
	defer a.endingUsers.Leave()
	a.hub.EndUser(userID, running)
	return nil
}

// errBusClosing refuses an account deletion whose end of the user's live
// work the cluster bus might not carry (it is closing).
var errBusClosing = httperr.Unavailable(
	"the server is shutting down; the account was not deleted: retry in a moment", nil)

func (a *App) router(authn *auth.Authenticator, lim *limits.Users) (http.Handler, error) {
	cfg := a.cfg
	accOpts := cfg.Accounts
	accOpts.OnLogout = a.hub.CloseSessionsBefore
	accOpts.OnDeleting = a.endUser
	accOpts.OnPasswordChanged = a.hub.CloseSessionsBefore
	if accOpts.Logger == nil {
		accOpts.Logger = cfg.Logger
	}
	accounts, err := auth.NewAccounts(cfg.Store, authn, accOpts)
	if err != nil {
		return nil, err
	}
	a.accounts = accounts
	a.health = api.NewHealthWith(api.HealthOptions{Store: cfg.Store, Writes: a.writer, Logger: cfg.Logger})
	if cfg.Bus != nil {
		a.health.SetBusCheck(a.hub.BusHealth)
	}
	r, err := transport.NewRouter(transport.RouterOptions{
		Logger:   cfg.Logger,
		Auth:     authn,
		Accounts: accounts,
		Conversations: api.NewConversations(cfg.Store, api.ConversationOptions{
			Live: a.hub, Catalog: cfg.Model, Creations: lim, Logger: cfg.Logger, SearchesPerMinute: cfg.SearchesPerMinute,
			EditsPerMinute: cfg.EditsPerMinute, SharedSearches: cfg.SharedLimits, SharedEdits: cfg.SharedLimits, RequestTimeout: cfg.RequestTimeout}),
		Models:               api.NewModels(a.hub), // the catalog with the windows refusals taught
		Health:               a.health,
		TrustedProxies:       cfg.TrustedProxies,
		BodyLimit:            cfg.BodyLimit,
		BodyReadTimeout:      cfg.BodyReadTimeout,
		ResponseWriteTimeout: cfg.ResponseWriteTimeout,
		Static:               cfg.Static,
		Metrics:              cfg.Metrics,
		Register: func(routes transport.Routes) {
			routes.Engine.GET("/ws", gin.WrapH(a.ws))
			a.sse.Routes(routes.Authed)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("build router: %w", err)
	}
	return r, nil
}

// Handler is the server's HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// Hub is the live hub (for tests and diagnostics).
func (a *App) Hub() *hub.Hub { return a.hub }

// SetNotReady makes /readyz answer 503 from now on while everything else
// is served as before: a load balancer polling it stops sending requests
// here before Shutdown closes the listener.
func (a *App) SetNotReady() { a.health.SetDraining() }

// Shutdown ends the live channel in order: /readyz turns 503; running
// answers end as interrupted, their text stored and their done frames
// queued; SSE streams and WebSockets send what is queued and close (1001),
// with at least closeSocketsTimeout for it after the answers;
// the batching writer drains; account deletions under way (which outlive
// their requests) are waited for. The HTTP server's own Shutdown (which
// stops accepting) runs beside it. The store is the caller's to close
// afterwards.
//
// With a cluster Bus it is a rolling restart instead: /readyz turns 503,
// tabs are closed first (1001) so they reconnect to other instances, the
// account deletions under way are waited for within ctx (they end their
// user's live work over the bus: past ctx, one that has not begun to is
// refused, one that has is waited for a little longer, see drainCluster),
// and the running answers go on streaming to the tabs over the bus until
// they end or ctx ends (the rest are then interrupted as above); then the
// writer drains and the bus is closed (the instance leaves the cluster).
// When the bus is unusable as Shutdown begins, or judges no other
// instance live (none could receive the answers' frames, nor the tabs
// follow them there), it stops as a single instance does instead
// (stopAlone).
func (a *App) Shutdown(ctx context.Context) error {
	a.once.Do(func() {
		a.health.SetDraining()
		if a.cfg.Bus != nil && !a.drainAlone(ctx) {
			a.err = a.drainCluster(ctx)
			return
		}
		a.err = a.stopAlone(ctx)
	})
	return a.err
}

// drainAlone reports whether this instance of a cluster stops as a single
// instance does: its bus is unusable (Bus.Health), or the bus judges it
// the only live instance (a bus with Alone, hub/natsbus: every other
// lease expired, and judged so). A rolling restart's drain would then
// close its tabs for nothing (no instance can take them, nor receive its
// answers' frames) and stream its answers to nobody until the grace ends.
// It logs why. Not when the bus does not judge yet (Alone false, though
// no other lease may look live: after an outage this instance's renewal
// can land before the others', just started, or after a step of the
// leases stream's clock): the others may be live, and taking the tabs
// and answers, so it drains.
func (a *App) drainAlone(ctx context.Context) bool {
	hctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	if err := a.cfg.Bus.Health(hctx); err != nil {
		a.cfg.Logger.Warn("cluster bus unusable at shutdown: stopping as a single instance (running answers interrupted now, "+
			"their tabs get their done before the close)", "err", err)
		return true
	}
	if b, ok := a.cfg.Bus.(interface{ Alone() bool }); ok && b.Alone() {
		a.cfg.Logger.Info("no other instance of the cluster is live: stopping as a single instance (running answers interrupted now, " +
			"their tabs get their done before the close)")
		return true
	}
	return false
}

// deletionsFirst bounds how long a cluster's instance stopping alone
// waits for the account deletions under way before it interrupts its
// answers (stopAlone): a deletion's first writes take milliseconds.
const deletionsFirst = 2 * time.Second

// busTimeout bounds the check of the cluster bus's health as Shutdown
// begins (which does no I/O with hub/natsbus).
const busTimeout = 5 * time.Second

// stopAlone is Shutdown of a single instance (see Shutdown), also of a
// cluster's instance whose drain would help no one (drainAlone): then,
// first, the account deletions under way are waited for, for at most
// deletionsFirst (no new one begins), so that one that has not yet reached
// its end of live work (endUser) gets there rather than being refused
// (errBusClosing: its user signed out everywhere, the account kept, 503);
// then no deletion begins to end its user's live work, those under way
// being waited for (waitEndingUsers), before the hub stops its bus work;
// and the bus is closed last. The wait is bounded because the answers
// stream on and sends are taken meanwhile (the hub is not yet closing):
// a deletion whose store is slow past it is refused as before. With a bus
// that is down the same holds: the close and stops a deletion sends may
// not reach the other instances, which close the removed account's tabs
// at their own check (auth.Watch).
func (a *App) stopAlone(ctx context.Context) error {
	var errEnding error
	if a.cfg.Bus != nil {
		dctx, cancel := context.WithTimeout(ctx, deletionsFirst)
		_ = a.accounts.Wait(dctx) // finish's Wait reports those still running
		cancel()
		errEnding = a.waitEndingUsers(ctx)
	}
	errHub := a.hub.Shutdown(ctx)
	// The grace may be spent waiting for the answers: the sockets get
	// a bound of their own to write the done frames queued and their
	// close frames (1001), rather than being cut with the grace; the
	// streams are waited for, as the HTTP server cuts what is left
	// once Shutdown returns.
	sctx, cancelSockets := atLeast(ctx, closeSocketsTimeout)
	defer cancelSockets()
	a.sse.Shutdown()
	errWS := a.ws.Shutdown(sctx)
	errSSE := a.sse.Wait(sctx)
	return errors.Join(errEnding, errHub, errWS, errSSE, a.finish(ctx))
}

// finish is the end of either shutdown once the answers are ended or
// drained: the hub's loop stops, the model is closed, and the last writes
// (the writer's, the account deletions removing their data) and the bus's
// close get a bound of their own: the grace may have been spent waiting
// for answers whose last writes the store holds up, and those are not
// abandoned with it.
func (a *App) finish(ctx context.Context) error {
	a.stopHub()
	<-a.hubDone
	a.closeModel()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWritesTimeout)
	defer cancel()
	errWriter := a.writer.Close(fctx)
	var errBus error
	if a.cfg.Bus != nil {
		errBus = a.cfg.Bus.Close(fctx)
	}
	return errors.Join(errWriter, errBus, a.accounts.Wait(fctx))
}

// closeModel closes the model if it can be closed (llm.Router ends its
// background model-list fetches), once the hub has stopped.
func (a *App) closeModel() {
	if c, ok := a.cfg.Model.(interface{ Close() }); ok {
		c.Close()
	}
}

// drainCluster is Shutdown with a cluster bus. An account deletion ends
// the user's live work on every instance over the bus (endUser): once the
// tabs are closed, no deletion starts, and those under way are waited
// for within the grace, before the hub stops its bus work and the bus is
// closed. Past the grace, one that has not begun to end its user's live
// work is refused (503, nothing removed); one that has begun (its close
// of the user's sockets is sent to every instance first) is given
// endUsersTimeout after the grace to stop the user's answers, then goes
// on to remove the data (a stop not done by then is cut: logged). The last wait, once the bus is
// closed, is for those removing their data from the store.
func (a *App) drainCluster(ctx context.Context) error {
	a.sse.Shutdown()
	errWS := a.ws.Shutdown(ctx)
	_ = a.accounts.Wait(ctx) // the last Wait reports those still running
	errEnding := a.waitEndingUsers(ctx)
	errHub := a.hub.Drain(ctx)
	return errors.Join(errWS, errEnding, errHub, a.finish(ctx))
}

// waitEndingUsers refuses the ends of users' live work from now on and
// waits for those under way (endUser) until ctx's deadline or
// endUsersTimeout from now, whichever is later: the deletions were waited
// for within ctx already, so one still ending its user's live work here
// means the grace is spent. Each is bounded on its own (busTimeout for
// the close, the hub's FinishTimeout per answer stopped) and needs only
// what still runs during the wait (the hub's bus work, the batching
// writer), so the wait cannot hold itself up.
func (a *App) waitEndingUsers(ctx context.Context) error {
	wctx, cancel := atLeast(ctx, endUsersTimeout)
	defer cancel()
	a.endingUsers.Close()
	if err := a.endingUsers.Wait(wctx); err != nil {
		return fmt.Errorf("account deletions ending their user's live work: %w", err)
	}
	return nil
}

// endUsersTimeout is how long, at least, a cluster's drain waits for an
// account deletion's end of its user's live work under way once the
// grace is spent: the stops of the user's answers, its close already
// sent. It fits the final writes' bound after the grace (docs/deploy.md:
// about 27 s, the single instance's 2 s for the sockets' close).
const endUsersTimeout = 2 * time.Second

// closeSocketsTimeout is how long the WebSockets and SSE streams have, at
// least, to write what is queued and their close frames (closed events)
// once the hub's shutdown is over, when it used the whole grace period.
const closeSocketsTimeout = 2 * time.Second

// atLeast is ctx, not cancelled with it, ending at its deadline or d from
// now, whichever is later.
func atLeast(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	end := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.After(end) {
		end = dl
	}
	return context.WithDeadline(context.WithoutCancel(ctx), end)
}

// finalWritesTimeout bounds the writer's drain and the bus's close after a
// cluster drain used the whole grace period.
const finalWritesTimeout = 10 * time.Second

func writerOptions(cfg Config, m *liveMetrics) batch.Options {
	o := cfg.Writer
	if o.Logger == nil {
		o.Logger = cfg.Logger
	}
	if o.Metrics == nil {
		o.Metrics = m
	}
	return o
}

// The hub asks its Writer whether it holds an answer's final update
// (hub.FinalHolder) before its sweep marks the answer interrupted; it finds
// out by a type assertion, so a change to either signature would switch
// that guard off without a word. This makes it a compile error.
var _ hub.FinalHolder = (*batch.Writer)(nil)

func hubOptions(cfg Config, w *batch.Writer, m *liveMetrics) hub.Options {
	o := cfg.Hub
	o.Store, o.Writer, o.Model, o.Titler, o.Logger = cfg.Store, w, cfg.Model, cfg.Titler, cfg.Logger
	if cfg.Bus != nil {
		o.Bus = cfg.Bus
	}
	if o.Metrics == nil {
		o.Metrics = m
	}
	return o
}

func wsOptions(cfg Config, h *hub.Hub, authn *auth.Authenticator, origins *ws.OriginChecker,
	lim *limits.Users, m *liveMetrics,
) ws.Options {
	o := cfg.WS
	o.Hub, o.Origins, o.Limits, o.Logger = h, origins, lim, cfg.Logger
	if o.Metrics == nil {
		o.Metrics = m
	}
	o.Authenticate = func(ctx context.Context, token string) (ws.Identity, error) {
		id, err := authn.Authenticate(ctx, token)
		if err != nil {
			return ws.Identity{}, wsAuthError(err)
		}
		return ws.Identity(id), nil
	}
	o.Recheck = func(ctx context.Context, id ws.Identity) error {
		return wsAuthError(authn.Recheck(ctx, auth.Identity(id)))
	}
	o.SentBefore = sentBefore(cfg.Store)
	return o
}

// sentBefore reports which kind of request of the user stored a message
// with the client message id (a send or regenerate repeating its own kind's
// is a retry, which spends no budget): a regenerate's key is on its answer.
func sentBefore(store persistence.Store) func(ctx context.Context, userID, clientMessageID string) (hub.Stored, error) {
	return func(ctx context.Context, userID, clientMessageID string) (hub.Stored, error) {
		m, err := store.MessageByClientID(ctx, userID, clientMessageID)
		switch {
		case errors.Is(err, persistence.ErrNotFound):
			return hub.StoredNone, nil
		case err != nil:
			return hub.StoredNone, err
		case m.Role == persistence.RoleAssistant:
			return hub.StoredRegenerate, nil
		}
		return hub.StoredSend, nil
	}
}

// setTimeout sets *d to def unless it is set.
func setTimeout(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// wsAuthError turns an auth error into the live channel's: a refusal
// wraps ws.ErrUnauthorized, a store failure stays as it is.
func wsAuthError(err error) error {
	if errors.Is(err, auth.ErrUnauthorized) {
		return fmt.Errorf("%w: %v", ws.ErrUnauthorized, err)
	}
	return err
}

// originChecker builds the WebSocket origin check from the allowed origins
// and the trusted proxies (whose X-Forwarded-Host is believed).
func originChecker(cfg Config) (*ws.OriginChecker, error) {
	oc := &ws.OriginChecker{Allowed: cfg.AllowedOrigins}
	for _, p := range cfg.TrustedProxies {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR", p)
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		oc.TrustedProxies = append(oc.TrustedProxies, prefix)
	}
	return oc, nil
}
