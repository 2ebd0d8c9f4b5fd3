package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatd/hub"
	"chatd/llm/openai"
	"chatd/transport/ws"
)

// envOf returns a getenv over m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr: ":8080", Env: "development", DataDir: "./data", DBConnectTimeout: 10 * time.Second,
		JWTTTL: 7 * 24 * time.Hour, OpenAIBaseURL: "https://api.openai.com/v1", Registration: true,
		ShutdownGrace: 15 * time.Second, BodyLimit: 1 << 20, BcryptCost: 12,
		LoginFailAccount: 5, LoginFailAccountTotal: 100, LoginChecksAccount: 30, LoginFailIP: 20, LoginChecksIP: 300, LoginFailureWindow: 15 * time.Minute,
		BodyReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, RequestTimeout: 30 * time.Second, MaxConnections: 10_000,
		RegistrationsPerHourIP: 10, ConversationsPerMinute: 10,
		MetricsAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		WSReadLimit:  32000*12 + 16<<10, WSQueue: 512, WSQueueBytes: 16 << 20, WSPingInterval: 25 * time.Second, WSPingTimeout: 15 * time.Second,
		MaxConnsPerUser: 20, FramesPerMinute: 300, SendsPerMinute: 30, MaxAnswersPerUser: 5,
		CoalesceInterval: 25 * time.Millisecond, CheckpointInterval: 300 * time.Millisecond,
		MaxAnswerDuration: 10 * time.Minute, FirstTokenTimeout: 30 * time.Second, IdleTimeout: 30 * time.Second,
		UpstreamRetries: 2, DemoDelay: 25 * time.Millisecond, MaxAnswerBytes: 256 << 10, SearchesPerMinute: 30, EditsPerMinute: 60,
		SearchIndexQuiet: 200 * time.Millisecond, SearchIndexMaxLag: 5 * time.Second, ReasoningFirstTokenTimeout: 5 * time.Minute,
		Cluster: ClusterConfig{LeaseTTL: 10 * time.Second, StreamMaxBytes: 1 << 30},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if c.upstreamConfigured() {
		t.Fatal("no key and the default URL: the demo model should serve")
	}
}

func TestLoadConfigValues(t *testing.T) {
	t.Parallel()
	static := t.TempDir()
	if err := os.WriteFile(filepath.Join(static, "index.html"), []byte("<html></html>"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(envOf(map[string]string{
		"CHATD_ADDR": "127.0.0.1:9000", "CHATD_ENV": "Production", "CHATD_DATA_DIR": "/var/lib/chatd",
		"MONGODB_URI": "mongodb://u:p@db1:27017,db2/chat?authSource=admin", "MONGODB_DATABASE": "chat2",
		"JWT_SECRET": strings.Repeat("s", 32), "JWT_TTL": "24h", "JWT_SECRET_ACCEPTED": " " + strings.Repeat("a", 32) + " ",
		"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://localhost:11434/v1", "OPENAI_MODELS": " gpt-a , ,gpt-b",
		"OPENAI_MODELS_FROM_UPSTREAM": "true", "OPENAI_REASONING_MODELS": "gpt-b, listed-upstream",
		"OPENAI_INLINE_THINKING": "gpt-a=open, listed-upstream = off,*=auto", "CHATD_REGISTRATION": "closed",
		"CHATD_ALLOWED_ORIGINS": "https://Chat.Example.com, http://localhost:5173/",
		"CHATD_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8", "CHATD_BODY_LIMIT": "2MiB",
		"CHATD_SHUTDOWN_GRACE": "1s", "CHATD_SHUTDOWN_DELAY": "5s", "CHATD_STATIC_DIR": static, "CHATD_METRICS_TOKEN": "m",
		"CHATD_METRICS_ALLOW": "10.1.0.0/16,192.168.1.7", "CHATD_LOG_LEVEL": "debug",
		"CHATD_BCRYPT_COST": "13", "CHATD_LOGIN_MAX_FAILURES_ACCOUNT": "3", "CHATD_LOGIN_MAX_FAILURES_IP": "50",
		"CHATD_LOGIN_MAX_CHECKS_ACCOUNT": "60", "CHATD_LOGIN_MAX_FAILURES_ACCOUNT_TOTAL": "40", "CHATD_LOGIN_MAX_CHECKS_IP": "700",
		"CHATD_LOGIN_FAILURE_WINDOW": "1h", "CHATD_DB_CONNECT_TIMEOUT": "3s",
		"CHATD_WS_READ_LIMIT": "128KiB", "CHATD_WS_PING_INTERVAL": "2s", "CHATD_SENDS_PER_MINUTE": "5",
		"CHATD_MAX_ANSWERS_PER_USER": "2", "CHATD_COALESCE_INTERVAL": "40ms", "CHATD_CHECKPOINT_INTERVAL": "1s", "CHATD_UPSTREAM_RETRIES": "0",
		"CHATD_PPROF_ADDR": "[::1]:0", "CHATD_BODY_READ_TIMEOUT": "5s", "CHATD_MAX_CONNECTIONS": "500",
		"CHATD_RESPONSE_WRITE_TIMEOUT": "7s", "CHATD_REQUEST_TIMEOUT": "9s",
		"CHATD_REGISTRATIONS_PER_HOUR_IP": "3", "CHATD_CONVERSATIONS_PER_MINUTE": "4",
		"CHATD_COALESCE_STREAMS": "50", "CHATD_COALESCE_MAX_INTERVAL": "100ms",
		"CHATD_SEARCH_INDEX_QUIET": "0s", "CHATD_SEARCH_INDEX_MAX_LAG": "30s",
		"CHATD_WS_QUEUE_BYTES": "4MiB", "CHATD_REASONING_FIRST_TOKEN_TIMEOUT": "20m",
	}))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"addr", c.Addr, "127.0.0.1:9000"},
		{"env", c.Production(), true},
		{"database", c.MongoDatabase, "chat2"},
		{"ttl", c.JWTTTL, 24 * time.Hour},
		{"accepted secret", c.JWTSecretAccepted, strings.Repeat("a", 32)},
		{"models", c.OpenAIModels, []string{"gpt-a", "gpt-b"}},
		{"from upstream", c.OpenAIModelsFromUpstream, true},
		{"reasoning models", c.OpenAIReasoningModels, []string{"gpt-b", "listed-upstream"}},
		{"reasoning first token", c.ReasoningFirstTokenTimeout, 20 * time.Minute},
		{"inline thinking", c.OpenAIInlineThinking, map[string]openai.InlineThinking{"gpt-a": openai.ThinkOpen,
			"listed-upstream": openai.ThinkOff, "*": openai.ThinkAuto}},
		{"origins", c.AllowedOrigins, []string{"https://chat.example.com", "http://localhost:5173"}},
		{"proxies", c.TrustedProxies, []string{"127.0.0.1", "10.0.0.0/8"}},
		{"registration", c.Registration, false},
		{"grace", c.ShutdownGrace, time.Second},
		{"shutdown delay", c.ShutdownDelay, 5 * time.Second},
		{"metrics allow", c.MetricsAllow, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("192.168.1.7/32")}},
		{"body limit", c.BodyLimit, int64(2 << 20)},
		{"log level", c.LogLevel.String(), "DEBUG"},
		{"bcrypt", c.BcryptCost, 13},
		{"login limits", []int{c.LoginFailAccount, c.LoginFailIP, c.LoginChecksAccount, c.LoginFailAccountTotal, c.LoginChecksIP},
			[]int{3, 50, 60, 40, 700}},
		{"window", c.LoginFailureWindow, time.Hour},
		{"connect timeout", c.DBConnectTimeout, 3 * time.Second},
		{"upstream", c.upstreamConfigured(), true},
		{"read limit", c.WSReadLimit, int64(128 << 10)},
		{"ping", c.WSPingInterval, 2 * time.Second},
		{"sends", c.SendsPerMinute, 5},
		{"answers per user", c.MaxAnswersPerUser, 2},
		{"coalesce", c.CoalesceInterval, 40 * time.Millisecond},
		{"checkpoint", c.CheckpointInterval, time.Second},
		{"coalesce streams", c.CoalesceStreams, 50},
		{"coalesce max", c.CoalesceMax, 100 * time.Millisecond},
		{"index quiet", c.SearchIndexQuiet, time.Duration(0)},
		{"index lag", c.SearchIndexMaxLag, 30 * time.Second},
		{"retries", retries(c.UpstreamRetries), -1},
		{"pprof", c.PprofAddr, "[::1]:0"},
		{"body read timeout", c.BodyReadTimeout, 5 * time.Second},
		{"response write timeout", c.WriteTimeout, 7 * time.Second},
		{"request timeout", c.RequestTimeout, 9 * time.Second},
		{"max connections", c.MaxConnections, 500},
		{"registrations", c.RegistrationsPerHourIP, 3},
		{"conversations", c.ConversationsPerMinute, 4},
		{"queue bytes", c.WSQueueBytes, 4 << 20},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// TestLoadConfigInlineThinking: OPENAI_INLINE_THINKING is a comma list
// of model=mode pairs, each mode auto, open or off, each model one of
// OPENAI_MODELS (or any with OPENAI_MODELS_FROM_UPSTREAM; "*": every
// model not named) and named once; refused beside CHATD_UPSTREAMS_FILE,
// whose models set their own. Every bad pair is reported.
func TestLoadConfigInlineThinking(t *testing.T) {
	t.Parallel()
	up := map[string]string{"OPENAI_API_KEY": "sk-x", "OPENAI_MODELS": "r1-distill,gpt-4o,my=model"}
	tests := []struct {
		name  string
		env   map[string]string
		want  map[string]openai.InlineThinking
		fails []string // the error's parts; none: accepted
	}{
		{"unset", nil, nil, nil},
		{"listed models and the rest", map[string]string{"OPENAI_INLINE_THINKING": " r1-distill=open ,gpt-4o=off,*=auto, my=model=open"},
			map[string]openai.InlineThinking{"r1-distill": openai.ThinkOpen, "gpt-4o": openai.ThinkOff, "*": openai.ThinkAuto,
				"my=model": openai.ThinkOpen}, nil},
		{"a model the upstream lists", map[string]string{"OPENAI_MODELS_FROM_UPSTREAM": "true", "OPENAI_INLINE_THINKING": "qwq:32b=open"},
			map[string]openai.InlineThinking{"qwq:32b": openai.ThinkOpen}, nil},
		{"bad pairs", map[string]string{"OPENAI_INLINE_THINKING": "r1-distill,=open,gpt-4o=on,r1-distill=Open,r1-distil=open,*=open,*=off"}, nil,
			[]string{`OPENAI_INLINE_THINKING: "r1-distill" is not model=mode`, `OPENAI_INLINE_THINKING: "=open" is not model=mode`,
				`OPENAI_INLINE_THINKING: gpt-4o: "on" is not an inline thinking mode (auto, open or off)`, `r1-distill: "Open" is not`,
				`OPENAI_INLINE_THINKING: "r1-distil" is not one of OPENAI_MODELS (r1-distill,gpt-4o,my=model)`,
				`OPENAI_INLINE_THINKING: names "*" twice`}},
		{"beside an upstreams file", map[string]string{"CHATD_UPSTREAMS_FILE": "missing.yaml", "OPENAI_INLINE_THINKING": "*=open"}, nil,
			[]string{"OPENAI_INLINE_THINKING: is not read with CHATD_UPSTREAMS_FILE: set inlineThinking"}},
		{"without an upstream", map[string]string{"OPENAI_API_KEY": "", "OPENAI_MODELS": "", "OPENAI_INLINE_THINKING": "r1=open"}, nil,
			[]string{`OPENAI_INLINE_THINKING: "r1" is not one of OPENAI_MODELS (unset)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := maps.Clone(up)
			maps.Copy(env, tc.env)
			c, err := loadConfig(envOf(env))
			for _, want := range tc.fails {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v lacks %q", err, want)
				}
			}
			if len(tc.fails) > 0 {
				return
			}
			if err != nil || !reflect.DeepEqual(c.OpenAIInlineThinking, tc.want) {
				t.Fatalf("inline thinking %v (err %v), want %v", c.OpenAIInlineThinking, err, tc.want)
			}
		})
	}
}

// TestLoadConfigOneUpstreamBesideFile: beside CHATD_UPSTREAMS_FILE, the
// settings of the one upstream it replaces stop the start naming each
// (OPENAI_BASE_URL, OPENAI_MODELS, OPENAI_MODELS_FROM_UPSTREAM, as
// OPENAI_REASONING_MODELS and OPENAI_INLINE_THINKING do), where they were
// quietly left out; OPENAI_API_KEY, which an upstream's apiKeyEnv may
// name, goes, and so does OPENAI_MODELS_FROM_UPSTREAM=false.
func TestLoadConfigOneUpstreamBesideFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "up.yaml")
	if err := os.WriteFile(file, []byte("upstreams:\n  - {name: local, baseURL: http://localhost:11434/v1, apiKeyEnv: OPENAI_API_KEY, models: [llama3]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   map[string]string
		fails []string // the error's parts; none: accepted
	}{
		{"the key an upstream names", map[string]string{"OPENAI_API_KEY": "sk-x"}, nil},
		{"base URL", map[string]string{"OPENAI_BASE_URL": "http://localhost:11434/v1"},
			[]string{"OPENAI_BASE_URL: is not read with CHATD_UPSTREAMS_FILE: set baseURL on an upstream in that file, and remove (or comment out) OPENAI_BASE_URL"}},
		{"models", map[string]string{"OPENAI_MODELS": "gpt-4o-mini,gpt-4o"},
			[]string{"OPENAI_MODELS: is not read with CHATD_UPSTREAMS_FILE: list the models on their upstream in that file"}},
		{"models from the upstream", map[string]string{"OPENAI_MODELS_FROM_UPSTREAM": "true"},
			[]string{"OPENAI_MODELS_FROM_UPSTREAM: is not read with CHATD_UPSTREAMS_FILE: set discover: true on an upstream"}},
		// false, its default, asks for nothing: an env file of the release
		// before that spelled it out still starts.
		{"models from the upstream, false", map[string]string{"OPENAI_MODELS_FROM_UPSTREAM": "false"}, nil},
		{"models from the upstream, not a boolean", map[string]string{"OPENAI_MODELS_FROM_UPSTREAM": "maybe"},
			[]string{"OPENAI_MODELS_FROM_UPSTREAM: \"maybe\" is not true or false"}},
		{"all of them at once", map[string]string{"OPENAI_BASE_URL": "https://api.openai.com/v1", "OPENAI_MODELS": "gpt-4o",
			"OPENAI_MODELS_FROM_UPSTREAM": "true", "OPENAI_REASONING_MODELS": "*"},
			[]string{"OPENAI_BASE_URL: is not read", "OPENAI_MODELS: is not read", "OPENAI_MODELS_FROM_UPSTREAM: is not read",
				"OPENAI_REASONING_MODELS: is not read"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"CHATD_UPSTREAMS_FILE": file, "OPENAI_API_KEY": "sk-x"}
			maps.Copy(env, tc.env)
			c, err := loadConfig(envOf(env))
			if len(tc.fails) == 0 {
				if err != nil || c.Upstreams == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, want := range tc.fails {
				if n := strings.Count(err.Error(), want); n != 1 {
					t.Errorf("error %q holds %q %d times, want once", err, want, n)
				}
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("k", 32)
	cases := []struct {
		name string
		env  map[string]string
		want string // the variable the error must name
	}{
		{"unknown env", map[string]string{"CHATD_ENV": "staging"}, "CHATD_ENV"},
		{"production without secret", map[string]string{"CHATD_ENV": "production"}, "JWT_SECRET"},
		{"production short secret", map[string]string{"CHATD_ENV": "production", "JWT_SECRET": "short"}, "JWT_SECRET"},
		{"accepted secret without a signing one", map[string]string{"JWT_SECRET_ACCEPTED": secret}, "JWT_SECRET_ACCEPTED"},
		{"accepted secret short", map[string]string{"JWT_SECRET": secret, "JWT_SECRET_ACCEPTED": "hunter2"}, "JWT_SECRET_ACCEPTED"},
		{"accepted secret the signing one", map[string]string{"JWT_SECRET": secret, "JWT_SECRET_ACCEPTED": secret}, "JWT_SECRET_ACCEPTED"},
		{"short secret in development", map[string]string{"JWT_SECRET": strings.Repeat("k", 31)}, "JWT_SECRET"},
		{"production weak bcrypt", map[string]string{"CHATD_ENV": "production", "JWT_SECRET": secret, "CHATD_BCRYPT_COST": "10"}, "CHATD_BCRYPT_COST"},
		{"bcrypt out of range", map[string]string{"CHATD_BCRYPT_COST": "3"}, "CHATD_BCRYPT_COST"},
		{"ttl not a duration", map[string]string{"JWT_TTL": "7d"}, "JWT_TTL"},
		{"ttl too short", map[string]string{"JWT_TTL": "5s"}, "JWT_TTL"},
		{"grace negative", map[string]string{"CHATD_SHUTDOWN_GRACE": "-1s"}, "CHATD_SHUTDOWN_GRACE"},
		{"grace zero", map[string]string{"CHATD_SHUTDOWN_GRACE": "0s"}, "CHATD_SHUTDOWN_GRACE"},
		{"shutdown delay negative", map[string]string{"CHATD_SHUTDOWN_DELAY": "-1s"}, "CHATD_SHUTDOWN_DELAY"},
		{"shutdown delay too long", map[string]string{"CHATD_SHUTDOWN_DELAY": "2m"}, "CHATD_SHUTDOWN_DELAY"},
		{"registration", map[string]string{"CHATD_REGISTRATION": "maybe"}, "CHATD_REGISTRATION"},
		{"bool", map[string]string{"OPENAI_MODELS_FROM_UPSTREAM": "yes please"}, "OPENAI_MODELS_FROM_UPSTREAM"},
		{"base url", map[string]string{"OPENAI_BASE_URL": "ftp://x"}, "OPENAI_BASE_URL"},
		{"origin with path", map[string]string{"CHATD_ALLOWED_ORIGINS": "https://a.example/app"}, "CHATD_ALLOWED_ORIGINS"},
		{"origin without scheme", map[string]string{"CHATD_ALLOWED_ORIGINS": "a.example"}, "CHATD_ALLOWED_ORIGINS"},
		{"proxy", map[string]string{"CHATD_TRUSTED_PROXIES": "my-proxy"}, "CHATD_TRUSTED_PROXIES"},
		{"metrics cidr", map[string]string{"CHATD_METRICS_ALLOW": "10.0.0.0/33"}, "CHATD_METRICS_ALLOW"},
		{"body limit", map[string]string{"CHATD_BODY_LIMIT": "1GiB"}, "CHATD_BODY_LIMIT"},
		{"body limit too small", map[string]string{"CHATD_BODY_LIMIT": "100"}, "CHATD_BODY_LIMIT"},
		{"log level", map[string]string{"CHATD_LOG_LEVEL": "loud"}, "CHATD_LOG_LEVEL"},
		{"login limit", map[string]string{"CHATD_LOGIN_MAX_FAILURES_ACCOUNT": "0"}, "CHATD_LOGIN_MAX_FAILURES_ACCOUNT"},
		{"login checks", map[string]string{"CHATD_LOGIN_MAX_CHECKS_ACCOUNT": "0"}, "CHATD_LOGIN_MAX_CHECKS_ACCOUNT"},
		{"login checks from an address", map[string]string{"CHATD_LOGIN_MAX_CHECKS_IP": "0"}, "CHATD_LOGIN_MAX_CHECKS_IP"},
		{"login checks from an address too high", map[string]string{"CHATD_LOGIN_MAX_CHECKS_IP": "100001"}, "CHATD_LOGIN_MAX_CHECKS_IP"},
		{"login limit from every address", map[string]string{"CHATD_LOGIN_MAX_FAILURES_ACCOUNT_TOTAL": "0"}, "CHATD_LOGIN_MAX_FAILURES_ACCOUNT_TOTAL"},
		{"login limit from every address too high", map[string]string{"CHATD_LOGIN_MAX_FAILURES_ACCOUNT_TOTAL": "100001"}, "CHATD_LOGIN_MAX_FAILURES_ACCOUNT_TOTAL"},
		{"upstream without models", map[string]string{"OPENAI_API_KEY": "sk-x"}, "OPENAI_MODELS"},
		{"models without an upstream (key left empty)", map[string]string{"OPENAI_API_KEY": " ", "OPENAI_MODELS": "gpt-4o-mini,gpt-4o",
			"OPENAI_BASE_URL": "https://api.openai.com/v1"}, "OPENAI_MODELS"},
		{"models from no upstream", map[string]string{"OPENAI_MODELS_FROM_UPSTREAM": "true"}, "OPENAI_MODELS_FROM_UPSTREAM"},
		{"reasoning model not offered", map[string]string{"OPENAI_API_KEY": "sk-x", "OPENAI_MODELS": "gpt-a,o-prod",
			"OPENAI_REASONING_MODELS": "o-prod,o-prd"}, "OPENAI_REASONING_MODELS"},
		{"reasoning model without models", map[string]string{"OPENAI_REASONING_MODELS": "*,o-prod"}, "OPENAI_REASONING_MODELS"},
		{"reasoning models beside an upstreams file", map[string]string{"CHATD_UPSTREAMS_FILE": "missing.yaml",
			"OPENAI_REASONING_MODELS": "*"}, "OPENAI_REASONING_MODELS"},
		{"reasoning first token too long", map[string]string{"CHATD_REASONING_FIRST_TOKEN_TIMEOUT": "2h"}, "CHATD_REASONING_FIRST_TOKEN_TIMEOUT"},
		{"reasoning first token zero", map[string]string{"CHATD_REASONING_FIRST_TOKEN_TIMEOUT": "0s"}, "CHATD_REASONING_FIRST_TOKEN_TIMEOUT"},
		{"database without MongoDB", map[string]string{"MONGODB_DATABASE": "chat"}, "MONGODB_DATABASE"},
		{"connect timeout without MongoDB", map[string]string{"CHATD_DB_CONNECT_TIMEOUT": "30s"}, "CHATD_DB_CONNECT_TIMEOUT"},
		{"mongo scheme", map[string]string{"MONGODB_URI": "postgres://u:hunter2@h/db"}, "MONGODB_URI"},
		{"answer over a MongoDB document", map[string]string{"MONGODB_URI": "mongodb://db/chatd", "CHATD_MAX_ANSWER_BYTES": "8MiB"}, "CHATD_MAX_ANSWER_BYTES"},
		{"pprof on every interface", map[string]string{"CHATD_PPROF_ADDR": ":6060"}, "CHATD_PPROF_ADDR"},
		{"pprof on a public address", map[string]string{"CHATD_PPROF_ADDR": "10.0.0.1:6060"}, "CHATD_PPROF_ADDR"},
		{"coalesce streams", map[string]string{"CHATD_COALESCE_STREAMS": "0"}, "CHATD_COALESCE_STREAMS"},
		{"coalesce max below interval", map[string]string{"CHATD_COALESCE_MAX_INTERVAL": "10ms"}, "CHATD_COALESCE_MAX_INTERVAL"},
		{"index quiet negative", map[string]string{"CHATD_SEARCH_INDEX_QUIET": "-1s"}, "CHATD_SEARCH_INDEX_QUIET"},
		{"index lag too short", map[string]string{"CHATD_SEARCH_INDEX_MAX_LAG": "1ms"}, "CHATD_SEARCH_INDEX_MAX_LAG"},
		{"pprof without port", map[string]string{"CHATD_PPROF_ADDR": "127.0.0.1"}, "CHATD_PPROF_ADDR"},
		{"queue bytes below two answers", map[string]string{"CHATD_MAX_ANSWER_BYTES": "1MiB", "CHATD_WS_QUEUE_BYTES": "1MiB"}, "CHATD_WS_QUEUE_BYTES"},
		{"queue bytes too large", map[string]string{"CHATD_WS_QUEUE_BYTES": "2GiB"}, "CHATD_WS_QUEUE_BYTES"},
		{"queue bytes below two answers of 8MiB", map[string]string{"CHATD_MAX_ANSWER_BYTES": "8MiB", "CHATD_WS_QUEUE_BYTES": "15MiB"}, "CHATD_WS_QUEUE_BYTES"},
		{"addr without colon", map[string]string{"CHATD_ADDR": "8080"}, "CHATD_ADDR"},
		{"addr port not a number", map[string]string{"CHATD_ADDR": ":no-such-service"}, "CHATD_ADDR"},
		{"addr port out of range", map[string]string{"CHATD_ADDR": ":70000"}, "CHATD_ADDR"},
		{"addr a URL", map[string]string{"CHATD_ADDR": "http://0.0.0.0:8080"}, "CHATD_ADDR"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadConfig(envOf(c.env))
			if err == nil || !strings.Contains(err.Error(), c.want+":") {
				t.Fatalf("error %v, want one naming %s", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows a password: %v", err)
			}
		})
	}

	// Every problem is reported at once.
	_, err := loadConfig(envOf(map[string]string{"JWT_TTL": "x", "CHATD_ENV": "x"}))
	if err == nil || !strings.Contains(err.Error(), "JWT_TTL") || !strings.Contains(err.Error(), "CHATD_ENV") {
		t.Fatalf("want both problems, got %v", err)
	}
}

// TestLoadConfigErrorText: the messages a newcomer meets first say what
// to write, with bounds written as one would set them (10m, 8760h), not as
// Go prints them (10m0s, 8760h0m0s).
func TestLoadConfigErrorText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"grace without a unit", map[string]string{"CHATD_SHUTDOWN_GRACE": "15"},
			`CHATD_SHUTDOWN_GRACE: "15" is not a duration from 1s to 10m: a number and its unit (ms, s, m, h), like 15s`},
		{"ttl in days", map[string]string{"JWT_TTL": "7d"},
			`JWT_TTL: "7d" is not a duration from 1m to 8760h: a number and its unit (ms, s, m, h), like 168h`},
		{"index lag below its bound", map[string]string{"CHATD_SEARCH_INDEX_MAX_LAG": "1ms"},
			`CHATD_SEARCH_INDEX_MAX_LAG: "1ms" is not a duration from 10ms to 1h: a number and its unit (ms, s, m, h), like 5s`},
		{"coalesce", map[string]string{"CHATD_COALESCE_INTERVAL": "2s"},
			`CHATD_COALESCE_INTERVAL: "2s" is not a duration from 1ms to 1s: a number and its unit (ms, s, m, h), like 25ms`},
		// The examples were 90s, 15m and 168h for every setting, none of
		// which this one takes; a default of 0s shows the maximum.
		{"delay, default 0s", map[string]string{"CHATD_SHUTDOWN_DELAY": "2m"},
			`CHATD_SHUTDOWN_DELAY: "2m" is not a duration from 0s to 1m: a number and its unit (ms, s, m, h), like 1m`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadConfig(envOf(c.env))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v\nwant it to hold %s", err, c.want)
			}
		})
	}
}

// TestAllowedOriginsAsBrowsersSendThem: an allowed origin written with its
// scheme's default port is kept without it, as a browser's Origin header
// has it (RFC 6454), so that the WebSocket's origin check, which compares
// the two as they are, lets that origin in.
func TestAllowedOriginsAsBrowsersSendThem(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(envOf(map[string]string{
		"CHATD_ALLOWED_ORIGINS": "https://Chat.Example.com:443, http://localhost:80, https://a.example:8443, http://b.example:443",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://chat.example.com", "http://localhost", "https://a.example:8443", "http://b.example:443"}
	if !reflect.DeepEqual(c.AllowedOrigins, want) {
		t.Errorf("origins %q, want %q", c.AllowedOrigins, want)
	}
	oc := &ws.OriginChecker{Allowed: c.AllowedOrigins}
	r := httptest.NewRequest("GET", "/ws", nil)
	r.Host = "chatd.internal:8080"
	r.Header.Set("Origin", "https://chat.example.com")
	if !oc.Check(r) {
		t.Error("the browser's origin https://chat.example.com is refused")
	}
}

// TestStaticDirChecked: a CHATD_STATIC_DIR without a built web client
// (index.html) is reported with the other bad variables, before anything
// starts.
func TestStaticDirChecked(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	_, err := loadConfig(envOf(map[string]string{"CHATD_STATIC_DIR": empty, "JWT_TTL": "x"}))
	if err == nil || !strings.Contains(err.Error(), "CHATD_STATIC_DIR:") || !strings.Contains(err.Error(), "JWT_TTL:") {
		t.Fatalf("want both problems, got %v", err)
	}
	built := t.TempDir()
	if err := os.WriteFile(filepath.Join(built, "index.html"), []byte("<html></html>"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(envOf(map[string]string{"CHATD_STATIC_DIR": built}))
	if err != nil || c.StaticDir != built {
		t.Fatalf("a built client: %v, %q", err, c.StaticDir)
	}
}

// TestBcryptCostRange: CHATD_BCRYPT_COST takes 4 to 16; a higher cost
// (bcrypt takes up to 31) would make every sign-in take seconds to
// minutes, and start-up would not show it.
func TestBcryptCostRange(t *testing.T) {
	t.Parallel()
	cases := []struct {
		value string
		ok    bool
	}{{"3", false}, {"4", true}, {"12", true}, {"16", true}, {"17", false}, {"31", false}, {"32", false}, {"twelve", false}}
	for _, c := range cases {
		cfg, err := loadConfig(envOf(map[string]string{"CHATD_BCRYPT_COST": c.value}))
		if c.ok {
			if err != nil || strconv.Itoa(cfg.BcryptCost) != c.value {
				t.Errorf("CHATD_BCRYPT_COST=%s: cost %d, error %v; want it taken", c.value, cfg.BcryptCost, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "CHATD_BCRYPT_COST:") || !strings.Contains(err.Error(), "from 4 to 16") {
			t.Errorf("CHATD_BCRYPT_COST=%s: error %v; want one naming the variable and the range 4 to 16", c.value, err)
		}
	}
}

// TestLoadConfigSizeErrorText: a refused size names its variable's range
// in KiB or MiB as one would write it, the units it takes, and an example
// within that range. The examples were 1048576, 512KiB, 2MiB and 1GiB
// for every size, and the range raw bytes (4096 to 16777216), so
// CHATD_WS_READ_LIMIT (at most 16 MiB) was shown 1GiB.
func TestLoadConfigSizeErrorText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, value, want string
	}{
		{"CHATD_BODY_LIMIT", "100MiB",
			`CHATD_BODY_LIMIT: "100MiB" is not a size from 1KiB to 64MiB: a whole number of bytes, or of KiB or MiB, like 1MiB`},
		{"CHATD_WS_READ_LIMIT", "1GiB",
			`CHATD_WS_READ_LIMIT: "1GiB" is not a size from 4KiB to 16MiB: a whole number of bytes, or of KiB or MiB, like 391KiB`},
		{"CHATD_MAX_ANSWER_BYTES", "1.5MiB",
			`CHATD_MAX_ANSWER_BYTES: "1.5MiB" is not a size from 1KiB to 64MiB: a whole number of bytes, or of KiB or MiB, like 256KiB`},
		{"CHATD_WS_QUEUE_BYTES", "512KiB",
			`CHATD_WS_QUEUE_BYTES: "512KiB" is not a size from 1MiB to 1GiB: a whole number of bytes, or of KiB, MiB or GiB, like 16MiB`},
		{"CHATD_NATS_STREAM_MAX_BYTES", "2TiB",
			`CHATD_NATS_STREAM_MAX_BYTES: "2TiB" is not a size from 64MiB to 1TiB: a whole number of bytes, or of KiB, MiB, GiB or TiB, like 1GiB`},
		{"CHATD_BODY_LIMIT", "1000",
			`CHATD_BODY_LIMIT: "1000" is not a size from 1KiB to 64MiB: a whole number of bytes, or of KiB or MiB, like 1MiB`},
	}
	for _, c := range cases {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			t.Parallel()
			env := func(v string) map[string]string {
				if strings.HasPrefix(c.name, "CHATD_NATS_") { // read only in a cluster
					return map[string]string{c.name: v, "MONGODB_URI": testMongo, "CHATD_NATS_URL": "nats://n1:4222"}
				}
				return map[string]string{c.name: v}
			}
			_, err := loadConfig(envOf(env(c.value)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v\nwant it to hold %s", err, c.want)
			}
			// The example is one the variable takes.
			_, example, _ := strings.Cut(c.want, ", like ")
			if _, err := loadConfig(envOf(env(example))); err != nil {
				t.Errorf("%s=%s, the example, is refused: %v", c.name, example, err)
			}
		})
	}
}

// TestQueueBytesHoldsACatchUp: the default CHATD_WS_QUEUE_BYTES takes
// hub.CatchUpBytes, what the frames of a resume of a full answer and its
// reasoning take at most (TestCatchUpBytesBound in hub builds them), for
// every CHATD_MAX_ANSWER_BYTES; a setting below two full answers is
// refused, one from there to hub.CatchUpBytes (settings of earlier
// releases: 2MiB answers with the example's 16MiB) is taken with a
// warning, one from hub.CatchUpBytes on quietly.
func TestQueueBytesHoldsACatchUp(t *testing.T) {
	t.Parallel()
	for _, maxAnswer := range []int64{1 << 10, 256 << 10, 1 << 20, 2 << 20, 7 << 20, 8 << 20, 64 << 20} {
		answer := strconv.FormatInt(maxAnswer, 10)
		least := hub.CatchUpBytes(int(maxAnswer))
		c, err := loadConfig(envOf(map[string]string{"CHATD_MAX_ANSWER_BYTES": answer}))
		if err != nil || int64(c.WSQueueBytes) < least {
			t.Errorf("answers of %d bytes: default queue %d bytes (error %v), want at least %d", maxAnswer, c.WSQueueBytes, err, least)
		}
		if msg, _ := queueBytesWarning(c); msg != "" {
			t.Errorf("answers of %d bytes, the default queue: warned %q", maxAnswer, msg)
		}
		for _, queue := range []int64{least, least - 1, 2 * maxAnswer, 2*maxAnswer - 1} {
			if queue < 1<<20 {
				continue // below the smallest bound taken
			}
			c, err := loadConfig(envOf(map[string]string{"CHATD_MAX_ANSWER_BYTES": answer, "CHATD_WS_QUEUE_BYTES": strconv.FormatInt(queue, 10)}))
			if taken := err == nil; taken != (queue >= 2*maxAnswer) {
				t.Errorf("answers of %d bytes, queue of %d: error %v, want one only below %d", maxAnswer, queue, err, 2*maxAnswer)
			}
			if msg, _ := queueBytesWarning(c); err == nil && (msg != "") != (queue < least) {
				t.Errorf("answers of %d bytes, queue of %d: warned %q, want a warning only below %d", maxAnswer, queue, msg, least)
			}
		}
	}
}

// TestQueueBytesWarnedAtStart: 2MiB answers with the example's 16MiB
// queue (taken before hub.CatchUpBytes) start, with a warning naming
// both variables, what may happen and the bound that holds every resume:
// a JSON WARN line with the variable for programs, a plain line at a
// terminal, as for a misspelt variable.
func TestQueueBytesWarnedAtStart(t *testing.T) {
	t.Parallel()
	env := testEnv(t.TempDir(), "CHATD_MAX_ANSWER_BYTES", "2MiB", "CHATD_WS_QUEUE_BYTES", "16MiB")
	c, err := loadConfig(envOf(env))
	if err != nil {
		t.Fatalf("2MiB answers, 16MiB queue: %v", err)
	}
	msg, attrs := queueBytesWarning(c)
	for _, want := range []string{"CHATD_WS_QUEUE_BYTES is 16MiB", "CHATD_MAX_ANSWER_BYTES at 2MiB", "4408", "backoff",
		"at least 24640KiB"} {
		if !strings.Contains(msg, want) {
			t.Errorf("warning %q does not say %q", msg, want)
		}
	}
	if hub.CatchUpBytes(2<<20) != 24640<<10 {
		t.Errorf("hub.CatchUpBytes(2MiB) = %d: the warning's 24640KiB above is not it", hub.CatchUpBytes(2<<20))
	}
	// The default it offers is the one taken unset: 16 times the answers'
	// bound, or 16MiB when that is more.
	for _, tc := range []struct{ answer, queue, unset string }{
		{"2MiB", "16MiB", "leave it unset (32MiB with these answers)"},
		{"512KiB", "4MiB", "leave it unset (16MiB with these answers)"},
	} {
		c, err := loadConfig(envOf(testEnv(t.TempDir(), "CHATD_MAX_ANSWER_BYTES", tc.answer, "CHATD_WS_QUEUE_BYTES", tc.queue)))
		if err != nil {
			t.Fatalf("%s answers, %s queue: %v", tc.answer, tc.queue, err)
		}
		if msg, _ := queueBytesWarning(c); !strings.Contains(msg, tc.unset) {
			t.Errorf("%s answers, %s queue: warning %q does not say %q", tc.answer, tc.queue, msg, tc.unset)
		}
	}

	s := start(t, env)
	var warned []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["variable"] == "CHATD_WS_QUEUE_BYTES" {
			warned = append(warned, line)
		}
	}
	if len(warned) != 1 || warned[0]["level"] != "WARN" || warned[0]["msg"] != msg ||
		warned[0]["queue_bytes_needed"] != float64(24640<<10) {
		t.Fatalf("want one WARN line saying %q, got %v\nlogs:\n%s", msg, warned, s.logs)
	}

	var term bytes.Buffer
	startWarning(&term, true, slog.New(slog.NewJSONHandler(&term, nil)), msg, attrs...)
	if term.String() != "warning: "+msg+"\n" {
		t.Fatalf("at a terminal: got %q", term.String())
	}
}
