package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"

	"chatd/cmd/chatd/app"
	"chatd/frontend"
	"chatd/hub"
	"chatd/hub/natsbus"
	"chatd/persistence"
	"chatd/persistence/batch"
	"chatd/persistence/mongo"
	"chatd/transport"
	"chatd/transport/auth"
	"chatd/transport/limits"
	"chatd/transport/sse"
	"chatd/transport/ws"
)

// run starts the server and blocks until ctx ends (a signal), then shuts
// down within the grace period. Configuration comes from getenv; logs go to
// stdout as JSON lines, after a short human banner when stdout is a
// terminal. ready, when set, is called with the listening address once
// requests are accepted (tests listen on ":0").
func run(ctx context.Context, getenv func(string) string, stdout io.Writer, ready func(net.Addr)) error {
	return runWith(ctx, getenv, stdout, hooks{ready: ready})
}

// hooks let tests watch and pace a run; the zero value is production's.
type hooks struct {
	// ready is called with the listening address once requests are
	// accepted; nil calls nothing.
	ready func(net.Addr)
	// delayOver returns a channel that receives when CHATD_SHUTDOWN_DELAY
	// (d) is over; nil waits d on a timer. A test ends the delay when it
	// has checked what it must see during it, rather than waiting d.
	delayOver func(d time.Duration) <-chan time.Time
	// lease is MongoDB's single-process lease's timing (openStore); the
	// zero value is the defaults.
	lease mongo.LeaseOptions
	// environ lists the variables set (KEY=VALUE), checked against those
	// read for misspelt names (warnUnknownVariables); nil is os.Environ.
	environ func() []string
}

// afterDelay is the channel that receives when the shutdown delay d is
// over, and the function that releases its timer.
func (h hooks) afterDelay(d time.Duration) (<-chan time.Time, func()) {
	if h.delayOver != nil {
		return h.delayOver(d), func() {}
	}
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// environment is h.environ's list, else the process's.
func (h hooks) environment() []string {
	if h.environ != nil {
		return h.environ()
	}
	return os.Environ()
}

// runWith is run with h.
func runWith(ctx context.Context, getenv func(string) string, stdout io.Writer, h hooks) error {
	read := map[string]bool{}
	cfg, err := loadConfig(recordReads(getenv, read))
	logger := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	// The start's warnings about the configuration are written at any
	// CHATD_LOG_LEVEL: at error, a misspelt CHATD_REGISTRATION would
	// otherwise leave registration open without a word.
	warnings := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: min(cfg.LogLevel, slog.LevelWarn)}))
	// Said before a refusal too: a misspelt name may be its cause.
	warnUnknownVariables(stdout, isTerminal(stdout), unknownVariables(h.environment(), read), warnings)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	if msg, attrs := queueBytesWarning(cfg); msg != "" {
		startWarning(stdout, isTerminal(stdout), warnings, msg, attrs...)
	}
	// The address is checked first, so that a port in use is said before
	// the store is opened (seconds with MongoDB), and taken again only to
	// serve: until then a connection is refused, not held in the kernel's
	// backlog while the store opens (a proxy then tries another instance).
	// A port the system chose (:0) is held instead: let go, it could be
	// given to the next listener asking for one (CHATD_PPROF_ADDR's :0).
	addr, held, err := checkListen(cfg.Addr)
	if err != nil {
		return err
	}
	if held != nil {
		defer held.Close() // served, it is closed already: this is a no-op then
	}
	shown := cfg
	shown.Addr = addr // the port :0 chose, for the banner's URL
	printBanner(stdout, isTerminal(stdout), shown)
	logStart(cfg, addr, currentBuild(), logger)
	warnProxyTimeout(cfg, logger)
	if cfg.PprofAddr != "" {
		stopPprof, err := startPprof(cfg.PprofAddr, logger)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	if err := prepareDataDir(cfg); err != nil {
		return err
	}

	store, err := openStoreWith(ctx, cfg, logger, h.lease)
	if err != nil {
		return stoppedDuringStart(ctx, "open the store", err, logger)
	}
	defer closeStore(store, logger)
	if err := sweepStreaming(ctx, cfg, store, logger); err != nil {
		if ctx.Err() != nil {
			return stoppedDuringStart(ctx, "mark answers left streaming as interrupted", err, logger)
		}
		// A full disk, say: serve what can be read (/readyz tells the
		// write failures), and leave those answers to the hub's sweep.
		logger.Error("could not mark the answers the last run left streaming as interrupted; serving anyway, the periodic sweep ends them once the store takes writes",
			slog.Any("err", err))
	}
	secrets, err := loadSecrets(cfg, logger)
	if err != nil {
		return err
	}
	bus, err := openBus(cfg, secrets, logger)
	if err != nil {
		return stoppedDuringStart(ctx, "join the cluster", err, logger)
	}

	a, err := newApp(cfg, store, bus, secrets, logger)
	if err != nil {
		if bus != nil {
			closeBus(bus, logger)
		}
		return err
	}
	ln, err := listenUnlessStopped(ctx, addr, held)
	if err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownGrace)
		defer cancel()
		if serr := a.Shutdown(sctx); serr != nil {
			logger.Warn("shut down after the failed listen", slog.Any("err", serr))
		}
		return stoppedDuringStart(ctx, "listen", err, logger)
	}
	probeCtx, stopProbe := context.WithCancel(ctx)
	var probe sync.WaitGroup
	probe.Go(func() { probeUpstream(probeCtx, cfg, &http.Client{}, logger) })
	if bus != nil {
		probe.Go(func() { watchJoin(probeCtx, cfg, bus, joinWait, logger) })
	}
	defer probe.Wait()
	defer stopProbe()
	return serve(ctx, cfg, ln, a, logger, h) // a.Shutdown closes the bus
}

// stoppedDuringStart is what runWith returns when the start-up step step
// failed with err: nil, with a log line naming the step, when ctx ended
// meanwhile (a SIGTERM while MongoDB was being reached cuts that step
// short, and its "context canceled" is no failure: exit status 1 would
// leave systemd's unit failed and count a crash in pm2); else err, a real
// failure (a timeout, a refused URI), for a non-zero exit.
func stoppedDuringStart(ctx context.Context, step string, err error, logger *slog.Logger) error {
	if ctx.Err() == nil {
		return err
	}
	logger.Info("stopped during start-up", slog.String("step", step))
	return nil
}

// listenUnlessStopped binds addr to serve (held, the listener of a port
// the system chose, is served as it is), unless ctx ended during the
// start (it then returns ctx's error, binding nothing): a stop asked for
// while the store opened is not served for CHATD_SHUTDOWN_DELAY first.
func listenUnlessStopped(ctx context.Context, addr string, held net.Listener) (net.Listener, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if held != nil {
		return held, nil
	}
	return listen(addr) // taken meanwhile: said as at the check
}

// checkListen binds addr and lets it go, returning the address to bind
// again to serve. When addr names port 0 it returns the port the system
// chose and the listener still bound to it (held, for the caller to serve
// or close): let go, that port could be chosen again for the next
// listener of port 0 before it is bound again.
func checkListen(addr string) (string, net.Listener, error) {
	ln, err := listen(addr)
	if err != nil {
		return "", nil, err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "0" {
		ln.Close()
		return addr, nil, nil
	}
	_, chosen, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		ln.Close()
		return "", nil, fmt.Errorf("CHATD_ADDR: the port chosen for %s: %w", addr, err)
	}
	return net.JoinHostPort(host, chosen), ln, nil
}

// sweepStreaming marks answers left streaming by the last run of this
// process as interrupted: no other process runs alone on the store (SQLite
// locks its directory; on MongoDB openStore took the single-process
// lease). In a cluster it does nothing: other instances'
// answers are streaming in the same store, and a dead instance's answers
// are ended by the live ones when its lease expires, and rows no lock
// names by the hub's periodic sweep (hub.Options.SweepAge; docs/scale.md).
// A failure does not stop the start: the hub's sweep, which runs in a
// single process too, ends those answers once their rows are SweepAge old
// and the store takes writes.
func sweepStreaming(ctx context.Context, cfg Config, store persistence.Store, logger *slog.Logger) error {
	if cfg.Cluster.Enabled() {
		return nil
	}
	n, err := store.InterruptStreaming(ctx)
	if err != nil {
		return fmt.Errorf("mark answers left streaming as interrupted: %w", err)
	}
	if n > 0 {
		logger.Warn("answers left streaming by the last run marked interrupted", slog.Int("count", n))
	}
	return nil
}

// newApp wires the model, accounts, REST API and live channel over store,
// joined to the cluster through bus when it is not nil; sessions are
// signed and verified with secrets.
func newApp(cfg Config, store persistence.Store, bus *natsbus.Bus, secrets jwtSecrets, logger *slog.Logger) (*app.App, error) {
	static, err := staticFiles(cfg)
	if err != nil {
		return nil, err
	}
	// app.New registers its metrics where /metrics gathers them from.
	metrics := transport.MetricsOptions{Token: cfg.MetricsToken, Allow: cfg.MetricsAllow,
		Registerer: prometheus.DefaultRegisterer, Gatherer: prometheus.DefaultGatherer}
	if err := registerBuildInfo(metrics.Registerer, currentBuild()); err != nil {
		return nil, err
	}
	model, titler := newModel(cfg, logger)
	ac := app.Config{
		Store:  store,
		Model:  model,
		Titler: titler,
		Logger: logger,
		Auth:   auth.Options{Secret: secrets.sign, Accepted: secrets.accepted, TTL: cfg.JWTTTL},
		Accounts: auth.AccountOptions{
			BcryptCost:                 cfg.BcryptCost,
			RegistrationClosed:         !cfg.Registration,
			MaxFailuresPerAccount:      cfg.LoginFailAccount,
			MaxFailuresPerAccountTotal: cfg.LoginFailAccountTotal,
			MaxChecksPerAccount:        cfg.LoginChecksAccount,
			MaxFailuresPerIP:           cfg.LoginFailIP,
			MaxChecksPerIP:             cfg.LoginChecksIP,
			FailureWindow:              cfg.LoginFailureWindow,
			RegistrationsPerHourIP:     cfg.RegistrationsPerHourIP,
		},
		AllowedOrigins:       cfg.AllowedOrigins,
		TrustedProxies:       cfg.TrustedProxies,
		BodyLimit:            cfg.BodyLimit,
		BodyReadTimeout:      cfg.BodyReadTimeout,
		ResponseWriteTimeout: cfg.WriteTimeout,
		RequestTimeout:       cfg.RequestTimeout,
		Static:               static,
		Metrics:              metrics,
		Hub: hub.Options{CoalesceInterval: cfg.CoalesceInterval, CoalesceMinGap: coalesceMinGap(cfg), CoalesceStreams: cfg.CoalesceStreams,
			CoalesceMaxInterval: cfg.CoalesceMax, MaxDuration: cfg.MaxAnswerDuration,
			MaxAnswerBytes: cfg.MaxAnswerBytes, MaxAnswersPerUser: cfg.MaxAnswersPerUser,
			HoleWait: max(3*time.Second, 2*cfg.CheckpointInterval)},
		SearchesPerMinute: cfg.SearchesPerMinute,
		EditsPerMinute:    cfg.EditsPerMinute,
		Writer:            batch.Options{Interval: cfg.CheckpointInterval},
		WS: ws.Options{ReadLimit: cfg.WSReadLimit, QueueSize: cfg.WSQueue, QueueBytes: cfg.WSQueueBytes,
			PingInterval: cfg.WSPingInterval, PingTimeout: cfg.WSPingTimeout},
		SSE: sse.Options{QueueSize: cfg.WSQueue, QueueBytes: cfg.WSQueueBytes},
		Limits: limits.Options{MaxConns: cfg.MaxConnsPerUser, FramesPerMinute: cfg.FramesPerMinute,
			SendsPerMinute: cfg.SendsPerMinute, ConversationsPerMinute: cfg.ConversationsPerMinute},
	}
	if bus != nil { // a nil *natsbus.Bus must not become a non-nil interface
		ac.Bus = bus
		ac.SharedLimits = bus.Limits()     // connections and sends per user, cluster-wide
		ac.Accounts.Shared = bus.Windows() // failed logins and registrations, cluster-wide
	}
	return app.New(ac)
}

// jwtSecrets are the secrets sessions are signed and verified with.
type jwtSecrets struct {
	sign     []byte   // JWT_SECRET (or the development secret)
	accepted [][]byte // JWT_SECRET_ACCEPTED: verifies, never signs
}

// loadSecrets reads the JWT secrets.
func loadSecrets(cfg Config, logger *slog.Logger) (jwtSecrets, error) {
	sign, err := jwtSecret(cfg, logger)
	if err != nil {
		return jwtSecrets{}, err
	}
	return jwtSecrets{sign: sign, accepted: acceptedSecrets(cfg, logger)}, nil
}

// fingerprints names the secrets for the other instances of a cluster
// (natsbus.SessionKeys), which compare them with theirs.
func (s jwtSecrets) fingerprints() natsbus.SessionKeys {
	k := natsbus.SessionKeys{Signs: auth.SecretFingerprint(s.sign)}
	k.Accepts = append(k.Accepts, k.Signs)
	for _, a := range s.accepted {
		k.Accepts = append(k.Accepts, auth.SecretFingerprint(a))
	}
	return k
}

// jwtSecret is JWT_SECRET, or in development the secret kept in
// <dataDir>/jwt-secret (made on first start). loadConfig already refused a
// missing secret in production.
func jwtSecret(cfg Config, logger *slog.Logger) ([]byte, error) {
	if cfg.JWTSecret != "" {
		return []byte(cfg.JWTSecret), nil
	}
	path := filepath.Join(cfg.DataDir, "jwt-secret")
	secret, created, err := auth.LoadOrCreateSecret(path)
	if err != nil {
		return nil, fmt.Errorf("JWT secret: %w", err)
	}
	if created {
		logger.Warn("JWT_SECRET is not set: generated a development secret", slog.String("path", path))
	}
	return secret, nil
}

// acceptedSecrets is JWT_SECRET_ACCEPTED as auth.Options.Accepted.
func acceptedSecrets(cfg Config, logger *slog.Logger) [][]byte {
	if cfg.JWTSecretAccepted == "" {
		return nil
	}
	logger.Info("accepting the tokens of a second JWT secret (JWT_SECRET_ACCEPTED); only JWT_SECRET signs")
	return [][]byte{[]byte(cfg.JWTSecretAccepted)}
}

// staticFiles is the web client to serve: CHATD_STATIC_DIR when set, else
// nil (the client built into the binary, or a placeholder page).
func staticFiles(cfg Config) (fs.FS, error) {
	if cfg.StaticDir == "" {
		return nil, nil
	}
	dir, err := frontend.Dir(cfg.StaticDir)
	if err != nil {
		return nil, fmt.Errorf("CHATD_STATIC_DIR: build the web client first (cd frontend && npm ci && npm run build): %w", err)
	}
	return dir, nil
}

// listen binds CHATD_ADDR before anything else is opened (the data
// directory, the store), so that a port another program holds is reported
// at once and the error says what to do about it.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("CHATD_ADDR: %s is in use by another program (another chatd?): stop it, or listen on another port, e.g. CHATD_ADDR=:8081: %w", addr, err)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("CHATD_ADDR: %s needs privileges this user lacks (ports below 1024 do): listen on a port from 1024 up, e.g. CHATD_ADDR=:8080, with nginx in front for 80 and 443 (docs/deploy.md): %w", addr, err)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return nil, fmt.Errorf("CHATD_ADDR: %s is not an address of this machine: name one of its own, or only the port (:8080) for all of them: %w", addr, err)
	}
	return nil, fmt.Errorf("CHATD_ADDR: listen on %s: %w", addr, err)
}

// serve answers on ln until ctx ends, then shuts down: /readyz turns
// 503, new connections are refused, live answers end as interrupted and
// sockets close with 1001, and requests in flight get cfg.ShutdownGrace to
// finish before the rest are cut.
func serve(ctx context.Context, cfg Config, ln net.Listener, a *app.App, logger *slog.Logger, h hooks) error {
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// Past MaxConnections, new connections wait in the kernel's backlog
	// until one closes; headers must arrive within ReadHeaderTimeout and
	// bodies within CHATD_BODY_READ_TIMEOUT, and REST responses must be
	// taken within CHATD_RESPONSE_WRITE_TIMEOUT (a write deadline per
	// 64 KiB, set by the router: http.Server.WriteTimeout would cut the
	// live channel's streams too), so idle or slow clients cannot hold the
	// slots.
	ln = netutil.LimitListener(ln, cfg.MaxConnections)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("listening", slog.String("addr", ln.Addr().String()))
	if h.ready != nil {
		h.ready(ln.Addr())
	}

	serveErr := waitForStop(ctx, cfg, served, a, logger, h)
	logger.Info("shutting down", slog.String("grace", cfg.ShutdownGrace.String()))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Shutdown(sctx) }()
	appErr := a.Shutdown(sctx)
	httpErr := <-httpDone
	if errors.Is(httpErr, context.DeadlineExceeded) {
		logger.Warn("grace period over: closing the remaining connections")
		httpErr = srv.Close()
	}
	if serveErr == nil {
		serveErr = <-served
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	if err := errors.Join(serveErr, httpErr, appErr); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// waitForStop returns when ctx ends (a signal) or the server failed (its
// error). After a signal, with CHATD_SHUTDOWN_DELAY, /readyz answers 503
// for that long while requests and connections are still served, so a
// load balancer that polls it moves traffic away before the listener
// closes; a server that fails meanwhile ends the wait.
func waitForStop(ctx context.Context, cfg Config, served <-chan error, a *app.App, logger *slog.Logger, h hooks) error {
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	if cfg.ShutdownDelay <= 0 {
		return nil
	}
	a.SetNotReady()
	logger.Info("not ready: still serving before the shutdown", slog.String("delay", cfg.ShutdownDelay.String()))
	over, release := h.afterDelay(cfg.ShutdownDelay)
	defer release()
	select {
	case err := <-served:
		return err
	case <-over:
		return nil
	}
}

func closeStore(s persistence.Store, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		logger.Error("close store", slog.String("err", err.Error()))
	}
}
