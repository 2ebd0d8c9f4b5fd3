package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"chatd/frontend"
	"chatd/hub"
	"chatd/internal/durtext"
	"chatd/llm/models"
	"chatd/llm/openai"
	"chatd/persistence/sqlite"
	"chatd/transport"
	"chatd/transport/api"
	"chatd/transport/auth"
	"chatd/transport/ws"
)

// Environments (CHATD_ENV).
const (
	envDevelopment = "development"
	envProduction  = "production"
)

// Config is the server's whole configuration, read from environment
// variables only (see README.md for the table).
type Config struct {
	Addr    string // CHATD_ADDR, default ":8080"
	Env     string // CHATD_ENV: "development" (default) or "production"
	DataDir string // CHATD_DATA_DIR, default "./data": SQLite file, generated JWT secret

	MongoURI         string        // MONGODB_URI; empty: the embedded SQLite store
	MongoDatabase    string        // MONGODB_DATABASE; default: the database in MONGODB_URI, else "chatd"
	DBConnectTimeout time.Duration // CHATD_DB_CONNECT_TIMEOUT, default 10s

	JWTSecret string        // JWT_SECRET; required (>= 32 bytes) in production
	JWTTTL    time.Duration // JWT_TTL, default 168h
	// JWTSecretAccepted is JWT_SECRET_ACCEPTED: a second secret whose
	// tokens are accepted, never used to sign (rotating JWT_SECRET without
	// signing anyone out: docs/deploy.md).
	JWTSecretAccepted string

	OpenAIKey                string   // OPENAI_API_KEY; empty: the demo model only
	OpenAIBaseURL            string   // OPENAI_BASE_URL, default https://api.openai.com/v1
	OpenAIModels             []string // OPENAI_MODELS, comma list; the first is the default
	OpenAIModelsFromUpstream bool     // OPENAI_MODELS_FROM_UPSTREAM, default false
	OpenAIReasoningModels    []string // OPENAI_REASONING_MODELS, comma list: models served as reasoning models; "*": all
	// OpenAIInlineThinking is OPENAI_INLINE_THINKING, a comma list of
	// model=mode: how a model thinks inline in its answer's content (auto,
	// open or off, see openai.InlineThinking); "*": every model not named.
	OpenAIInlineThinking map[string]openai.InlineThinking

	UpstreamsFile string       // CHATD_UPSTREAMS_FILE: several upstreams (JSON or YAML); wins over OPENAI_*
	Upstreams     *models.File // the file, read and validated

	AllowedOrigins  []string       // CHATD_ALLOWED_ORIGINS: extra browser origins for /ws
	TrustedProxies  []string       // CHATD_TRUSTED_PROXIES: IPs/CIDRs whose X-Forwarded-For is believed
	Registration    bool           // CHATD_REGISTRATION: "open" (default) or "closed"
	ShutdownGrace   time.Duration  // CHATD_SHUTDOWN_GRACE, default 15s
	ShutdownDelay   time.Duration  // CHATD_SHUTDOWN_DELAY: /readyz 503 while still serving, before the shutdown; default 0
	StaticDir       string         // CHATD_STATIC_DIR: serve the front end from this directory
	MetricsToken    string         // CHATD_METRICS_TOKEN
	MetricsAllow    []netip.Prefix // CHATD_METRICS_ALLOW, default loopback
	BodyLimit       int64          // CHATD_BODY_LIMIT, default 1MiB
	BodyReadTimeout time.Duration  // CHATD_BODY_READ_TIMEOUT, default 30s: a request body must arrive within it
	WriteTimeout    time.Duration  // CHATD_RESPONSE_WRITE_TIMEOUT, default 30s: each 64 KiB of a REST response must be taken within it
	RequestTimeout  time.Duration  // CHATD_REQUEST_TIMEOUT, default 30s: how long a request may wait on the database (app.Config.RequestTimeout)
	MaxConnections  int            // CHATD_MAX_CONNECTIONS, default 10000: open TCP connections; more wait to be accepted
	LogLevel        slog.Level     // CHATD_LOG_LEVEL, default info
	PprofAddr       string         // CHATD_PPROF_ADDR: unset (default) serves no profiles; a loopback address serves /debug/pprof/

	BcryptCost             int           // CHATD_BCRYPT_COST, default 12 (at least 12 in production), at most maxBcryptCost (16)
	LoginFailAccount       int           // CHATD_LOGIN_MAX_FAILURES_ACCOUNT, default 5: per account and client address
	LoginFailAccountTotal  int           // CHATD_LOGIN_MAX_FAILURES_ACCOUNT_TOTAL, default 100: per account from every address (raised to LoginFailAccount when below it)
	LoginChecksAccount     int           // CHATD_LOGIN_MAX_CHECKS_ACCOUNT, default 30 (raised to LoginFailAccount when below it)
	LoginFailIP            int           // CHATD_LOGIN_MAX_FAILURES_IP, default 20
	LoginChecksIP          int           // CHATD_LOGIN_MAX_CHECKS_IP, default 300: right or wrong, to any accounts (raised to LoginFailIP and LoginChecksAccount when below them)
	LoginFailureWindow     time.Duration // CHATD_LOGIN_FAILURE_WINDOW, default 15m
	RegistrationsPerHourIP int           // CHATD_REGISTRATIONS_PER_HOUR_IP, default 10
	ConversationsPerMinute int           // CHATD_CONVERSATIONS_PER_MINUTE, default 10 (per user, REST and live together)

	// Live channel (hub, transport/ws, transport/sse, persistence/batch, llm).
	WSReadLimit        int64         // CHATD_WS_READ_LIMIT, default ws.DefaultReadLimit (391KiB): larger frames close with 1009
	WSQueue            int           // CHATD_WS_QUEUE, default 512 frames: a client that lets it fill is closed with 4408
	WSQueueBytes       int           // CHATD_WS_QUEUE_BYTES, default 16MiB (16 × CHATD_MAX_ANSWER_BYTES when larger): the same, in bytes
	WSPingInterval     time.Duration // CHATD_WS_PING_INTERVAL, default 25s
	WSPingTimeout      time.Duration // CHATD_WS_PING_TIMEOUT, default 15s
	MaxConnsPerUser    int           // CHATD_MAX_CONNS_PER_USER, default 20
	FramesPerMinute    int           // CHATD_FRAMES_PER_MINUTE, default 300
	SendsPerMinute     int           // CHATD_SENDS_PER_MINUTE, default 30
	MaxAnswersPerUser  int           // CHATD_MAX_ANSWERS_PER_USER, default hub.DefaultMaxAnswersPerUser (5): answers running at once, per instance
	CoalesceInterval   time.Duration // CHATD_COALESCE_INTERVAL, default 25ms
	CoalesceStreams    int           // CHATD_COALESCE_STREAMS, default 0: hub.Options' default (100 per CPU)
	CoalesceMax        time.Duration // CHATD_COALESCE_MAX_INTERVAL, default 0: CoalesceInterval and a fifth
	SearchIndexQuiet   time.Duration // CHATD_SEARCH_INDEX_QUIET, default 200ms (SQLite store)
	SearchIndexMaxLag  time.Duration // CHATD_SEARCH_INDEX_MAX_LAG, default 5s (SQLite store)
	CheckpointInterval time.Duration // CHATD_CHECKPOINT_INTERVAL, default 300ms
	MaxAnswerDuration  time.Duration // CHATD_MAX_ANSWER_DURATION, default 10m
	MaxAnswerBytes     int           // CHATD_MAX_ANSWER_BYTES, default 256KiB: a longer answer ends with finish reason length
	SearchesPerMinute  int           // CHATD_SEARCHES_PER_MINUTE, default 30: conversation searches per user
	EditsPerMinute     int           // CHATD_EDITS_PER_MINUTE, default 60: changes and deletions of conversations per user
	FirstTokenTimeout  time.Duration // CHATD_FIRST_TOKEN_TIMEOUT, default 30s
	IdleTimeout        time.Duration // CHATD_IDLE_TIMEOUT, default 30s
	UpstreamRetries    int           // CHATD_UPSTREAM_RETRIES, default 2 (before the first token only)
	DemoDelay          time.Duration // CHATD_DEMO_DELAY, default 25ms: the demo model's pace
	// ReasoningFirstTokenTimeout is CHATD_REASONING_FIRST_TOKEN_TIMEOUT,
	// default 5m: the first-token timeout of requests to reasoning models,
	// which may think silently for minutes (openai.Options).
	ReasoningFirstTokenTimeout time.Duration

	// Cluster: several instances over NATS JetStream (cluster.go).
	Cluster ClusterConfig
}

// Production reports whether CHATD_ENV=production.
func (c Config) Production() bool { return c.Env == envProduction }

// configReader reads variables and collects every problem, so one start
// reports all of them.
type configReader struct {
	getenv func(string) string
	errs   []error
}

func (r *configReader) fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

func (r *configReader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *configReader) duration(name string, def, min, max time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min || d > max {
		r.fail(name, "%q is not a duration from %s to %s: a number and its unit (ms, s, m, h), like %s", v,
			durtext.Short(min), durtext.Short(max), durtext.Short(durationExample(def, max)))
		return def
	}
	return d
}

// durationExample is a value of a duration setting to show how one is
// written: its default, or its maximum when the default is zero, so the
// example is one the setting takes.
func durationExample(def, max time.Duration) time.Duration {
	if def > 0 {
		return def
	}
	return max
}

func (r *configReader) integer(name string, def, min, max int) int {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		r.fail(name, "%q is not a whole number from %d to %d", v, min, max)
		return def
	}
	return n
}

// maxBcryptCost is the highest CHATD_BCRYPT_COST accepted. Each step
// doubles the time of a password hash: about 4 s per hash on a typical core
// at 16, so that every sign-in and registration takes seconds of a core
// (from about 19 it outlasts nginx's 35 s on /api/). bcrypt itself would
// take up to 31, and the dummy hash of an unknown account (made at the
// least cost) would not show a slow cost at start-up.
const maxBcryptCost = 16

// bcryptCost reads a bcrypt work factor from 4 (bcrypt's least) to
// maxBcryptCost.
func (r *configReader) bcryptCost(name string) int {
	const least = 4 // bcrypt.MinCost
	v := r.str(name, "")
	if v == "" {
		return auth.DefaultBcryptCost
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least || n > maxBcryptCost {
		r.fail(name, "%q is not a whole number from %d to %d (each step doubles the time of a password hash: about 4 s at %d on a typical core)",
			v, least, maxBcryptCost, maxBcryptCost)
		return auth.DefaultBcryptCost
	}
	return n
}

func (r *configReader) boolean(name string, def bool) bool {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, "%q is not true or false", v)
		return def
	}
	return b
}

func (r *configReader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(r.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, "%q is not one of %s", v, strings.Join(allowed, ", "))
	return def
}

// list splits a comma list, dropping empty items.
func (r *configReader) list(name, def string) []string {
	var out []string
	for _, item := range strings.Split(r.str(name, def), ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// loadConfig reads the configuration; every invalid value is reported.
// maxMongoAnswerBytes is the largest CHATD_MAX_ANSWER_BYTES with
// MongoDB: an answer's text and its reasoning, each up to that size, are
// stored in one document, which MongoDB limits to 16 MiB (the rest of the
// document needs far less than the 2 MiB left).
const maxMongoAnswerBytes = 7 << 20

func loadConfig(getenv func(string) string) (Config, error) {
	r := &configReader{getenv: getenv}
	c := Config{
		Addr:              r.listenAddr("CHATD_ADDR", ":8080"),
		Env:               r.oneOf("CHATD_ENV", envDevelopment, envDevelopment, envProduction),
		DataDir:           r.str("CHATD_DATA_DIR", "./data"),
		MongoURI:          r.str("MONGODB_URI", ""),
		MongoDatabase:     r.str("MONGODB_DATABASE", ""),
		JWTSecret:         strings.TrimSpace(getenv("JWT_SECRET")),
		JWTSecretAccepted: strings.TrimSpace(getenv("JWT_SECRET_ACCEPTED")),
		JWTTTL:            r.duration("JWT_TTL", auth.DefaultTTL, time.Minute, 365*24*time.Hour),

		DBConnectTimeout: r.duration("CHATD_DB_CONNECT_TIMEOUT", 10*time.Second, time.Second, 5*time.Minute),

		OpenAIKey:                strings.TrimSpace(getenv("OPENAI_API_KEY")),
		OpenAIBaseURL:            r.str("OPENAI_BASE_URL", "https://api.openai.com/v1"),
		OpenAIModels:             r.list("OPENAI_MODELS", ""),
		OpenAIModelsFromUpstream: r.boolean("OPENAI_MODELS_FROM_UPSTREAM", false),

		TrustedProxies:  r.list("CHATD_TRUSTED_PROXIES", ""),
		Registration:    r.oneOf("CHATD_REGISTRATION", "open", "open", "closed") == "open",
		ShutdownGrace:   r.duration("CHATD_SHUTDOWN_GRACE", 15*time.Second, time.Second, 10*time.Minute),
		ShutdownDelay:   r.duration("CHATD_SHUTDOWN_DELAY", 0, 0, time.Minute),
		StaticDir:       r.str("CHATD_STATIC_DIR", ""),
		MetricsToken:    strings.TrimSpace(getenv("CHATD_METRICS_TOKEN")),
		BodyLimit:       r.size("CHATD_BODY_LIMIT", 1<<20, 1<<10, 64<<20),
		BodyReadTimeout: r.duration("CHATD_BODY_READ_TIMEOUT", transport.DefaultBodyReadTimeout, 100*time.Millisecond, 10*time.Minute),
		WriteTimeout:    r.duration("CHATD_RESPONSE_WRITE_TIMEOUT", transport.DefaultResponseWriteTimeout, 100*time.Millisecond, 10*time.Minute),
		RequestTimeout:  r.duration("CHATD_REQUEST_TIMEOUT", api.DefaultRequestTimeout, 100*time.Millisecond, 10*time.Minute),
		MaxConnections:  r.integer("CHATD_MAX_CONNECTIONS", 10_000, 16, 10_000_000),
		LogLevel:        r.level("CHATD_LOG_LEVEL"),
		PprofAddr:       r.loopbackAddr("CHATD_PPROF_ADDR"),

		BcryptCost:             r.bcryptCost("CHATD_BCRYPT_COST"),
		LoginFailAccount:       r.integer("CHATD_LOGIN_MAX_FAILURES_ACCOUNT", auth.DefaultMaxFailuresPerAccount, 1, 1000),
		LoginFailAccountTotal:  r.integer("CHATD_LOGIN_MAX_FAILURES_ACCOUNT_TOTAL", auth.DefaultMaxFailuresPerAccountTotal, 1, 100000),
		LoginChecksAccount:     r.integer("CHATD_LOGIN_MAX_CHECKS_ACCOUNT", auth.DefaultMaxChecksPerAccount, 1, 100000),
		LoginFailIP:            r.integer("CHATD_LOGIN_MAX_FAILURES_IP", auth.DefaultMaxFailuresPerIP, 1, 100000),
		LoginChecksIP:          r.integer("CHATD_LOGIN_MAX_CHECKS_IP", auth.DefaultMaxChecksPerIP, 1, 100000),
		LoginFailureWindow:     r.duration("CHATD_LOGIN_FAILURE_WINDOW", auth.DefaultFailureWindow, time.Second, 24*time.Hour),
		RegistrationsPerHourIP: r.integer("CHATD_REGISTRATIONS_PER_HOUR_IP", auth.DefaultRegistrationsPerHourIP, 1, 1_000_000),
		ConversationsPerMinute: r.integer("CHATD_CONVERSATIONS_PER_MINUTE", 10, 1, 1_000_000),

		WSReadLimit:        r.size("CHATD_WS_READ_LIMIT", ws.DefaultReadLimit, 4<<10, 16<<20),
		WSQueue:            r.integer("CHATD_WS_QUEUE", 512, 16, 1<<16),
		WSPingInterval:     r.duration("CHATD_WS_PING_INTERVAL", 25*time.Second, 100*time.Millisecond, 10*time.Minute),
		WSPingTimeout:      r.duration("CHATD_WS_PING_TIMEOUT", 15*time.Second, 100*time.Millisecond, 10*time.Minute),
		MaxConnsPerUser:    r.integer("CHATD_MAX_CONNS_PER_USER", 20, 1, 10000),
		FramesPerMinute:    r.integer("CHATD_FRAMES_PER_MINUTE", 300, 4, 1<<20),
		SendsPerMinute:     r.integer("CHATD_SENDS_PER_MINUTE", 30, 1, 1<<20),
		MaxAnswersPerUser:  r.integer("CHATD_MAX_ANSWERS_PER_USER", hub.DefaultMaxAnswersPerUser, 1, 10000),
		CoalesceInterval:   r.duration("CHATD_COALESCE_INTERVAL", 25*time.Millisecond, time.Millisecond, time.Second),
		CoalesceStreams:    r.integer("CHATD_COALESCE_STREAMS", 0, 1, 1_000_000),
		CoalesceMax:        r.duration("CHATD_COALESCE_MAX_INTERVAL", 0, time.Millisecond, 10*time.Second),
		SearchIndexQuiet:   r.duration("CHATD_SEARCH_INDEX_QUIET", sqlite.DefaultIndexQuiet, 0, time.Minute),
		SearchIndexMaxLag:  r.duration("CHATD_SEARCH_INDEX_MAX_LAG", 5*time.Second, 10*time.Millisecond, time.Hour),
		CheckpointInterval: r.duration("CHATD_CHECKPOINT_INTERVAL", 300*time.Millisecond, 10*time.Millisecond, time.Minute),
		MaxAnswerDuration:  r.duration("CHATD_MAX_ANSWER_DURATION", 10*time.Minute, time.Second, 24*time.Hour),
		MaxAnswerBytes:     int(r.size("CHATD_MAX_ANSWER_BYTES", 256<<10, 1<<10, 64<<20)),
		SearchesPerMinute:  r.integer("CHATD_SEARCHES_PER_MINUTE", 30, 1, 1<<20),
		EditsPerMinute:     r.integer("CHATD_EDITS_PER_MINUTE", api.DefaultEditsPerMinute, 1, 1<<20),
		FirstTokenTimeout:  r.duration("CHATD_FIRST_TOKEN_TIMEOUT", 30*time.Second, models.MinTimeout, models.MaxTimeout),
		IdleTimeout:        r.duration("CHATD_IDLE_TIMEOUT", 30*time.Second, models.MinTimeout, models.MaxTimeout),
		UpstreamRetries:    r.integer("CHATD_UPSTREAM_RETRIES", 2, 0, models.MaxRetries),
		DemoDelay:          r.duration("CHATD_DEMO_DELAY", 25*time.Millisecond, 0, time.Second),
	}
	c.ReasoningFirstTokenTimeout = r.duration("CHATD_REASONING_FIRST_TOKEN_TIMEOUT", openai.DefaultReasoningFirstTokenTimeout,
		models.MinTimeout, models.MaxReasoningFirstTokenTimeout)
	c.WSQueueBytes = r.queueBytes(c.MaxAnswerBytes)
	r.pprofApart(c.Addr, c.PprofAddr)
	if c.CoalesceMax != 0 && c.CoalesceMax < c.CoalesceInterval {
		r.fail("CHATD_COALESCE_MAX_INTERVAL", "%s is below CHATD_COALESCE_INTERVAL (%s); it bounds the widened window, so it must be at least that", c.CoalesceMax, c.CoalesceInterval)
	}
	if c.StaticDir != "" {
		if _, err := frontend.Dir(c.StaticDir); err != nil {
			r.fail("CHATD_STATIC_DIR", "holds no built web client (cd frontend && npm ci && npm run build): %v", err)
		}
	}
	c.AllowedOrigins = r.origins("CHATD_ALLOWED_ORIGINS")
	c.MetricsAllow = r.prefixes("CHATD_METRICS_ALLOW", "127.0.0.0/8,::1/128")
	r.prefixes("CHATD_TRUSTED_PROXIES", "") // validated here, passed on as strings
	r.checkURL("OPENAI_BASE_URL", c.OpenAIBaseURL)
	r.checkMongoURI(c.MongoURI)
	r.mongoOnly(c.MongoURI)
	if c.MongoURI != "" && c.MaxAnswerBytes > maxMongoAnswerBytes {
		r.fail("CHATD_MAX_ANSWER_BYTES", "is %d bytes; with MongoDB it can be at most %d (7MiB): an answer and its reasoning, each up to this size, are one document, and MongoDB refuses a document over 16 MiB",
			c.MaxAnswerBytes, maxMongoAnswerBytes)
	}
	c.Cluster = r.readCluster(c.MongoURI != "")
	r.checkSecrets(c)
	c.UpstreamsFile = r.str("CHATD_UPSTREAMS_FILE", "")
	if c.UpstreamsFile != "" {
		r.replacedByUpstreamsFile(c)
		f, err := models.ReadFile(c.UpstreamsFile, getenv)
		if err != nil {
			r.fail("CHATD_UPSTREAMS_FILE", "%v", err)
		}
		c.Upstreams = f
	} else if c.upstreamConfigured() && len(c.OpenAIModels) == 0 && !c.OpenAIModelsFromUpstream {
		r.fail("OPENAI_MODELS", "name at least one model (gpt-4o-mini,gpt-4o) or set OPENAI_MODELS_FROM_UPSTREAM=true")
	} else if !c.upstreamConfigured() {
		r.modelsWithoutUpstream(c)
	}
	c.OpenAIReasoningModels = r.reasoningModels(c)
	c.OpenAIInlineThinking = r.inlineThinking(c)
	return c, errors.Join(r.errs...)
}

// modelsWithoutUpstream refuses models asked for with no upstream to serve
// them (neither OPENAI_API_KEY nor an OPENAI_BASE_URL of its own), where
// the start would quietly offer the demo model only: a key left empty or
// misspelt in the environment file.
func (r *configReader) modelsWithoutUpstream(c Config) {
	const fix = "set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL (a server of your own, such as Ollama at http://localhost:11434/v1), or unset it for the offline demo model"
	if len(c.OpenAIModels) > 0 {
		r.fail("OPENAI_MODELS", "names models, but no upstream is configured to serve them: "+fix)
	}
	if c.OpenAIModelsFromUpstream {
		r.fail("OPENAI_MODELS_FROM_UPSTREAM", "is true, but no upstream is configured to list models: "+fix)
	}
}

// replacedByUpstreamsFile refuses, beside CHATD_UPSTREAMS_FILE, the
// settings of the one upstream that the file replaces, as
// OPENAI_REASONING_MODELS and OPENAI_INLINE_THINKING are: the start would
// quietly leave them out (a base URL, a model list the operator believes
// in force). OPENAI_API_KEY goes, as an upstream's apiKeyEnv may name it,
// and so does OPENAI_MODELS_FROM_UPSTREAM=false, its default (asking for
// nothing the file would have to do).
func (r *configReader) replacedByUpstreamsFile(c Config) {
	for _, v := range []struct {
		name, instead string
		set           bool
	}{
		{"OPENAI_BASE_URL", "set baseURL on an upstream in that file", r.str("OPENAI_BASE_URL", "") != ""},
		{"OPENAI_MODELS", "list the models on their upstream in that file", r.str("OPENAI_MODELS", "") != ""},
		// false, its default, asks for nothing (a value neither true nor
		// false is refused as such when read)
		{"OPENAI_MODELS_FROM_UPSTREAM", "set discover: true on an upstream in that file", c.OpenAIModelsFromUpstream},
	} {
		if v.set {
			r.fail(v.name, "is not read with CHATD_UPSTREAMS_FILE: %s, and remove (or comment out) %s", v.instead, v.name)
		}
	}
}

// reasoningModels reads OPENAI_REASONING_MODELS: the models of the one
// upstream served as reasoning models whatever their ids ("*": all). Each
// must be one of OPENAI_MODELS, where a name that is not would be a typo
// that silently declares nothing; with OPENAI_MODELS_FROM_UPSTREAM any
// name goes, as it may be one the upstream lists. With an upstreams file
// the variable is refused: the file declares its own (reasoning: true).
func (r *configReader) reasoningModels(c Config) []string {
	const name = "OPENAI_REASONING_MODELS"
	ids := r.list(name, "")
	switch {
	case len(ids) == 0:
		return nil
	case c.UpstreamsFile != "":
		r.fail(name, "is not read with CHATD_UPSTREAMS_FILE: declare reasoning: true on the model, or on its upstream, in that file")
		return nil
	}
	for _, id := range ids {
		r.offered(name, id, c)
	}
	return ids
}

// inlineThinking reads OPENAI_INLINE_THINKING: how models of the one
// upstream think inline, a comma list of model=mode pairs (mode auto,
// open or off, see openai.InlineThinking; model "*" for every model not
// named). Each model must be one of OPENAI_MODELS as in
// OPENAI_REASONING_MODELS, and named once. With an upstreams file the
// variable is refused: the file sets its own (inlineThinking).
func (r *configReader) inlineThinking(c Config) map[string]openai.InlineThinking {
	const name = "OPENAI_INLINE_THINKING"
	pairs := r.list(name, "")
	switch {
	case len(pairs) == 0:
		return nil
	case c.UpstreamsFile != "":
		r.fail(name, "is not read with CHATD_UPSTREAMS_FILE: set inlineThinking on the model, or on its upstream, in that file")
		return nil
	}
	out := make(map[string]openai.InlineThinking, len(pairs))
	for _, pair := range pairs {
		i := strings.LastIndex(pair, "=")
		if i <= 0 || strings.TrimSpace(pair[:i]) == "" {
			r.fail(name, "%q is not model=mode, such as deepseek-r1=open or *=off", pair)
			continue
		}
		id := strings.TrimSpace(pair[:i])
		mode, err := openai.ParseInlineThinking(strings.TrimSpace(pair[i+1:]))
		switch _, twice := out[id]; {
		case err != nil:
			r.fail(name, "%s: %v", id, err)
		case twice:
			r.fail(name, "names %q twice", id)
		default:
			r.offered(name, id, c)
			out[id] = mode
		}
	}
	return out
}

// offered fails the variable name for a model id that is not one of
// OPENAI_MODELS, where it would be a typo that silently sets nothing; "*"
// (all of them) goes, and with OPENAI_MODELS_FROM_UPSTREAM any id, as it
// may be one the upstream lists.
func (r *configReader) offered(name, id string, c Config) {
	if id == "*" || c.OpenAIModelsFromUpstream || slices.Contains(c.OpenAIModels, id) {
		return
	}
	listed := strings.Join(c.OpenAIModels, ",")
	if listed == "" {
		listed = "unset"
	}
	r.fail(name, "%q is not one of OPENAI_MODELS (%s); name models listed there, \"*\" for all of them, or set OPENAI_MODELS_FROM_UPSTREAM=true for a model the upstream lists",
		id, listed)
}

// queueBytes reads CHATD_WS_QUEUE_BYTES, the bound in bytes of the frames
// waiting for one client. Its default, ws.DefaultQueueBytes (16 MiB), holds
// many catch-ups of a full answer (text and reasoning, each up to
// CHATD_MAX_ANSWER_BYTES); with a larger CHATD_MAX_ANSWER_BYTES it is 16
// times that. A bound below two full answers is refused: a client resuming
// one (its text and its reasoning) would be cut off every time. One from
// there to hub.CatchUpBytes, which settings of earlier releases may hold,
// is taken with a warning at start (queueBytesWarning).
func (r *configReader) queueBytes(maxAnswer int) int {
	n := r.size("CHATD_WS_QUEUE_BYTES", defaultQueueBytes(maxAnswer), 1<<20, ws.MaxQueueBytes)
	if n < 2*int64(maxAnswer) {
		r.fail("CHATD_WS_QUEUE_BYTES", "is %d bytes, below twice CHATD_MAX_ANSWER_BYTES (%d): a resume of a full answer and its reasoning would not fit",
			n, maxAnswer)
	}
	return int(n)
}

// defaultQueueBytes is CHATD_WS_QUEUE_BYTES unset with answers of up to
// maxAnswer bytes: ws.DefaultQueueBytes, or 16 times maxAnswer when larger.
func defaultQueueBytes(maxAnswer int) int64 {
	return max(ws.DefaultQueueBytes, 16*int64(maxAnswer))
}

// checkSecrets applies the production rules.
func (r *configReader) checkSecrets(c Config) {
	switch {
	case c.JWTSecret != "" && len(c.JWTSecret) < auth.MinSecretBytes:
		r.fail("JWT_SECRET", "is %d bytes; it must be at least %d (generate one with: openssl rand -hex 32)", len(c.JWTSecret), auth.MinSecretBytes)
	case c.JWTSecret == "" && c.Production():
		r.fail("JWT_SECRET", "must be set (at least %d bytes) when CHATD_ENV=production (generate one with: openssl rand -hex 32)", auth.MinSecretBytes)
	}
	switch a := c.JWTSecretAccepted; {
	case a == "":
	case c.JWTSecret == "":
		r.fail("JWT_SECRET_ACCEPTED", "needs JWT_SECRET: it names a secret accepted beside the one that signs")
	case len(a) < auth.MinSecretBytes:
		r.fail("JWT_SECRET_ACCEPTED", "is %d bytes; it must be at least %d", len(a), auth.MinSecretBytes)
	case a == c.JWTSecret:
		r.fail("JWT_SECRET_ACCEPTED", "is JWT_SECRET itself: it must be the other secret of a rotation (docs/deploy.md)")
	}
	if c.Production() && c.BcryptCost < auth.DefaultBcryptCost {
		r.fail("CHATD_BCRYPT_COST", "is %d; production needs at least %d", c.BcryptCost, auth.DefaultBcryptCost)
	}
}

func (r *configReader) level(name string) slog.Level {
	var l slog.Level
	v := r.str(name, "info")
	if err := l.UnmarshalText([]byte(v)); err != nil {
		r.fail(name, "%q is not one of debug, info, warn, error", v)
		return slog.LevelInfo
	}
	return l
}

// size reads a byte count: a whole number with an optional unit B, KiB
// (or K, KB), MiB (or M, MB), GiB (or G, GB) or TiB (or T, TB), all
// powers of 1024. A refused value is reported with the range and an
// example (the default) written in those units.
func (r *configReader) size(name string, def, min, max int64) int64 {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	num := strings.TrimRight(v, "BKMGTibkmgt ")
	unit := strings.ToUpper(strings.TrimSpace(v[len(num):]))
	mult := map[string]int64{"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
		"G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40}[unit]
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || mult == 0 || n < 0 || n > max/mult || n*mult < min {
		r.fail(name, "%q is not a size from %s to %s: a whole number of bytes, or of %s, like %s", v,
			sizeText(min), sizeText(max), sizeUnits(max), sizeText(def))
		return def
	}
	return n * mult
}

// sizeUnitNames are the units of a size, each 1024 times the one before.
var sizeUnitNames = []string{"KiB", "MiB", "GiB", "TiB"}

// sizeText writes n bytes as a size setting takes it: in the largest unit
// that divides it (64MiB, 391KiB), else in bytes.
func sizeText(n int64) string {
	unit := ""
	for _, u := range sizeUnitNames {
		if n == 0 || n%1024 != 0 {
			break
		}
		n, unit = n/1024, u
	}
	return strconv.FormatInt(n, 10) + unit
}

// sizeUnits lists the units a size of at most max may be written in
// ("KiB or MiB"): none larger than max.
func sizeUnits(max int64) string {
	units := sizeUnitNames[:1]
	for i, size := 1, int64(1<<20); i < len(sizeUnitNames) && size <= max; i, size = i+1, size<<10 {
		units = sizeUnitNames[:i+1]
	}
	if len(units) == 1 {
		return units[0]
	}
	return strings.Join(units[:len(units)-1], ", ") + " or " + units[len(units)-1]
}

// prefixes reads a comma list of IP addresses and CIDRs.
func (r *configReader) prefixes(name, def string) []netip.Prefix {
	var out []netip.Prefix
	for _, item := range r.list(name, def) {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				r.fail(name, "%q is not an IP address or CIDR", item)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

// origins reads a comma list of browser origins (scheme://host[:port]),
// in lower case and without the scheme's default port.
func (r *configReader) origins(name string) []string {
	var out []string
	for _, item := range r.list(name, "") {
		u, err := url.Parse(item)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			r.fail(name, "%q is not an origin like https://chat.example.com", item)
			continue
		}
		host := u.Host
		if u.Port() == map[string]string{"http": "80", "https": "443"}[u.Scheme] {
			// As a browser writes the origin (RFC 6454): without its
			// scheme's default port, which the origin check then matches.
			host = strings.TrimSuffix(host, ":"+u.Port())
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+host))
	}
	return out
}

// listenAddr reads a [host]:port to listen on, checked now so that a
// mistyped one (8080, a URL, a port over 65535) is reported with the other
// bad variables rather than after the store was opened.
func (r *configReader) listenAddr(name, def string) string {
	v := r.str(name, def)
	_, port, err := net.SplitHostPort(v)
	if err == nil {
		_, err = net.LookupPort("tcp", port)
	}
	if err != nil {
		r.fail(name, "%q is not a [host]:port to listen on such as :8080 or 127.0.0.1:8080", v)
		return def
	}
	return v
}

// loopbackAddr reads a host:port whose host is a loopback address (or
// "localhost"); "" when unset.
func (r *configReader) loopbackAddr(name string) string {
	v := r.str(name, "")
	if v == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(v)
	if _, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil {
		r.fail(name, "%q is not a host:port such as 127.0.0.1:6060", v)
		return ""
	}
	if a, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !a.IsLoopback()) {
		r.fail(name, "%q is not a loopback address: profiles must not be reachable from other hosts", v)
		return ""
	}
	return v
}

func (r *configReader) checkURL(name, v string) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, "%q is not an http(s) URL", redactURI(v))
	}
}

// mongoOnly refuses the settings of MongoDB alone set without MONGODB_URI:
// chatd would run on the embedded SQLite store as if they were not there
// (a URI left out of the environment file, or misspelt), as readCluster
// refuses the NATS settings without CHATD_NATS_URL.
func (r *configReader) mongoOnly(uri string) {
	if uri != "" {
		return
	}
	for _, name := range []string{"MONGODB_DATABASE", "CHATD_DB_CONNECT_TIMEOUT"} {
		if r.str(name, "") != "" {
			r.fail(name, "is set but MONGODB_URI is not: set MONGODB_URI to use MongoDB, or remove %s for the embedded SQLite store", name)
		}
	}
}

func (r *configReader) checkMongoURI(v string) {
	if v == "" {
		return
	}
	if !strings.HasPrefix(v, "mongodb://") && !strings.HasPrefix(v, "mongodb+srv://") {
		r.fail("MONGODB_URI", "%q must start with mongodb:// or mongodb+srv://", redactURI(v))
	}
}
