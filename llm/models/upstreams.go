package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/goccy/go-yaml"

	"chatd/internal/durtext"
	"chatd/internal/uriredact"
	"chatd/llm"
	"chatd/llm/openai"
)

// File is an upstreams file (CHATD_UPSTREAMS_FILE), in JSON or YAML; see
// deploy/upstreams.example.yaml and the README.
type File struct {
	// Upstreams are offered in this order; model ids are unique across
	// them (a name another model has becomes "upstream/name": see
	// llm.Router).
	Upstreams []UpstreamConfig `json:"upstreams"`
	// Default is the id of the default model; it defaults to the model
	// marked default, else the first one. It must be a configured model's
	// id, unless an upstream discovers (see File.checkDefault).
	Default string `json:"default,omitempty"`
}

// UpstreamConfig is one OpenAI-compatible server.
type UpstreamConfig struct {
	// Name identifies the upstream (letters, digits, ".", "_", "-"): it
	// prefixes clashing model ids and groups /api/models. Label is its
	// display name (default: Name).
	Name  string `json:"name"`
	Label string `json:"label,omitempty"`
	// BaseURL is the API root including its version path
	// ("https://api.openai.com/v1", "http://localhost:11434/v1").
	BaseURL string `json:"baseURL"`
	// APIKey, or the name of the environment variable holding it
	// (APIKeyEnv, preferred: keeps the secret out of the file). Neither:
	// no key is sent (Ollama, vLLM).
	APIKey    string `json:"apiKey,omitempty"`
	APIKeyEnv string `json:"apiKeyEnv,omitempty"`
	// Headers and Query are added to every request (Azure: the api-key
	// header and the api-version query parameter).
	Headers map[string]string `json:"headers,omitempty"`
	Query   map[string]string `json:"query,omitempty"`
	// Azure selects go-openai's Azure OpenAI mode (a request names its
	// model's deployment, see ModelConfig.Deployment; the key goes in
	// api-key); AzureAPIVersion its api-version.
	Azure           bool   `json:"azure,omitempty"`
	AzureAPIVersion string `json:"azureAPIVersion,omitempty"`
	// Models are offered in order; Discover also offers what the
	// upstream's GET /models lists. At least one of the two is needed.
	Models   []ModelConfig `json:"models,omitempty"`
	Discover bool          `json:"discover,omitempty"`
	// Timeouts and Retries of this upstream's requests; zero values take
	// the server's (CHATD_FIRST_TOKEN_TIMEOUT,
	// CHATD_REASONING_FIRST_TOKEN_TIMEOUT, CHATD_IDLE_TIMEOUT,
	// CHATD_UPSTREAM_RETRIES; 10s for the model list). They take the
	// variables' ranges (MinTimeout and the bounds beside it).
	Timeouts Timeouts `json:"timeouts,omitempty"`
	Retries  *int     `json:"retries,omitempty"`
	// ContextTokens, MaxOutputTokens and Defaults apply to every model of
	// the upstream that does not set its own.
	ContextTokens   int      `json:"contextTokens,omitempty"`
	MaxOutputTokens int      `json:"maxOutputTokens,omitempty"`
	Defaults        Defaults `json:"defaults,omitempty"`
	// Reasoning serves every model of the upstream, discovered ones too,
	// as a reasoning model (see ModelConfig.Reasoning).
	Reasoning bool `json:"reasoning,omitempty"`
	// InlineThinking is how every model of the upstream, discovered ones
	// too, thinks inline, unless the model sets its own (see
	// ModelConfig.InlineThinking).
	InlineThinking openai.InlineThinking `json:"inlineThinking,omitempty"`
}

// ModelConfig is one configured model; in a file it may also be given as
// just its id ("gpt-4o-mini").
type ModelConfig struct {
	ID              string   `json:"id"`
	Name            string   `json:"name,omitempty"` // display name; default: ID
	Default         bool     `json:"default,omitempty"`
	ContextTokens   int      `json:"contextTokens,omitempty"`
	MaxOutputTokens int      `json:"maxOutputTokens,omitempty"`
	Defaults        Defaults `json:"defaults,omitempty"`
	// Reasoning declares an OpenAI-style reasoning model whose id does not
	// say so (an Azure deployment, a proxy's own name): it is sent
	// max_completion_tokens instead of max_tokens, and the title's
	// reasoning effort (see openai.Options.ReasoningModels).
	Reasoning bool `json:"reasoning,omitempty"`
	// InlineThinking says how the model puts its thinking in its
	// answer's content when its server does not send it apart: "auto"
	// (the default) takes a leading <think>…</think> block for it,
	// "open" everything up to the first </think> (a model whose prompt
	// template opens the block: DeepSeek-R1 and its distills, QwQ-32B,
	// Qwen3's Thinking-2507 models), "off" nothing (see
	// openai.Options.InlineThinking).
	InlineThinking openai.InlineThinking `json:"inlineThinking,omitempty"`
	// Deployment names the Azure deployment serving the model, on an
	// upstream with azure: true, requested exactly as given. Without it
	// the deployment is the id as earlier releases (go-openai's default
	// mapper) named it: ":" removed, and "." too from an id holding "3.5"
	// (gpt-3.5-turbo: Azure's usual gpt-35-turbo); so a deployment whose
	// name holds '.' or ':' that way needs it.
	Deployment *string `json:"deployment,omitempty"`
}

// UnmarshalJSON accepts an id string or an object.
func (m *ModelConfig) UnmarshalJSON(b []byte) error {
	var id string
	if json.Unmarshal(b, &id) == nil {
		*m = ModelConfig{ID: id}
		return nil
	}
	type plain ModelConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode((*plain)(m))
}

// Defaults are default sampling parameters.
type Defaults struct {
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"topP,omitempty"`
	MaxTokens   int      `json:"maxTokens,omitempty"`
	Stop        []string `json:"stop,omitempty"`
}

// Timeouts of one upstream, as Go durations ("30s"). FirstToken bounds
// the wait for a request's first text; ReasoningFirstToken replaces it for
// requests to reasoning models (by name or declared, see
// ModelConfig.Reasoning), which may think silently for minutes, and is
// never shorter than it (see openai.Options).
type Timeouts struct {
	FirstToken          Duration `json:"firstToken,omitempty"`
	ReasoningFirstToken Duration `json:"reasoningFirstToken,omitempty"`
	Idle                Duration `json:"idle,omitempty"`
	List                Duration `json:"list,omitempty"`
}

// Bounds of an upstream's timeouts and retries, the same in an upstreams
// file as in the variables that set the server's
// (CHATD_FIRST_TOKEN_TIMEOUT, CHATD_IDLE_TIMEOUT,
// CHATD_REASONING_FIRST_TOKEN_TIMEOUT, CHATD_UPSTREAM_RETRIES). A model
// list's timeout has no variable; it takes MinTimeout to MaxTimeout.
const (
	MinTimeout                    = 100 * time.Millisecond
	MaxTimeout                    = 10 * time.Minute
	MaxReasoningFirstTokenTimeout = time.Hour
	MaxRetries                    = 10
)

// check returns a problem per timeout set (not zero) outside its bounds.
func (t Timeouts) check() []string {
	var out []string
	for _, f := range []struct {
		name, server string
		d, max       Duration
	}{
		{"firstToken", "CHATD_FIRST_TOKEN_TIMEOUT", t.FirstToken, Duration(MaxTimeout)},
		{"reasoningFirstToken", "CHATD_REASONING_FIRST_TOKEN_TIMEOUT", t.ReasoningFirstToken, Duration(MaxReasoningFirstTokenTimeout)},
		{"idle", "CHATD_IDLE_TIMEOUT", t.Idle, Duration(MaxTimeout)},
		{"list", "10s", t.List, Duration(MaxTimeout)},
	} {
		if f.d != 0 && (f.d < Duration(MinTimeout) || f.d > f.max) {
			out = append(out, fmt.Sprintf("timeouts: %s: %s is not a duration from %s to %s (unset: %s)", f.name,
				durtext.Short(time.Duration(f.d)), durtext.Short(MinTimeout), durtext.Short(time.Duration(f.max)), f.server))
		}
	}
	return out
}

// Duration is a time.Duration written as a Go duration string ("90s").
type Duration time.Duration

// UnmarshalJSON reads "90s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration such as \"30s\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes "90s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// ReadFile reads and validates an upstreams file: YAML when its name ends
// in .yaml or .yml, else JSON. Unknown fields are refused, so typos show.
// getenv resolves apiKeyEnv.
func ReadFile(path string, getenv func(string) string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read upstreams file: %w", err)
	}
	f, err := Parse(data, filepath.Ext(path), getenv)
	if err != nil {
		return nil, fmt.Errorf("upstreams file %s: %w", path, err)
	}
	return f, nil
}

// Parse reads an upstreams file's content; ext ".yaml" or ".yml" selects
// YAML, anything else JSON.
func Parse(data []byte, ext string, getenv func(string) string) (*File, error) {
	if e := strings.ToLower(ext); e == ".yaml" || e == ".yml" {
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, fmt.Errorf("invalid YAML: %w", err)
		}
		data = j
	}
	var f File
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("invalid file: %w", err)
	}
	if err := f.validate(getenv); err != nil {
		return nil, err
	}
	if err := f.checkIDs(); err != nil { // models.go
		return nil, err
	}
	return &f, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// validate checks every upstream and resolves API keys; it reports every
// problem at once.
func (f *File) validate(getenv func(string) string) error {
	var errs []error
	if len(f.Upstreams) == 0 {
		errs = append(errs, errors.New("no upstreams"))
	}
	seen := make(map[string]bool)
	for i := range f.Upstreams {
		u := &f.Upstreams[i]
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("upstream %d (%q): %s", i+1, u.Name, fmt.Sprintf(format, args...)))
		}
		if !nameRE.MatchString(u.Name) {
			fail("name must be 1-64 letters, digits, '.', '_' or '-'")
		}
		if seen[u.Name] {
			fail("name is used twice")
		}
		seen[u.Name] = true
		if p, err := url.Parse(u.BaseURL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			fail("baseURL %q is not an http(s) URL", uriredact.URI(u.BaseURL))
		}
		if u.APIKeyEnv != "" {
			if u.APIKey != "" {
				fail("set apiKey or apiKeyEnv, not both")
			}
			if u.APIKey = strings.TrimSpace(getenv(u.APIKeyEnv)); u.APIKey == "" {
				fail("apiKeyEnv names %s, which is not set", u.APIKeyEnv)
			}
		}
		if len(u.Models) == 0 && !u.Discover {
			fail("list models or set discover: true")
		}
		for _, p := range u.Timeouts.check() {
			fail("%s", p)
		}
		if u.Retries != nil && (*u.Retries < 0 || *u.Retries > MaxRetries) {
			fail("retries: %d is not a whole number from 0 to %d", *u.Retries, MaxRetries)
		}
		if u.ContextTokens < 0 || u.MaxOutputTokens < 0 {
			fail("contextTokens and maxOutputTokens must not be negative")
		}
		if err := checkDefaults(u.Defaults, u.MaxOutputTokens); err != nil {
			fail("defaults: %v", err)
		}
		if err := checkInlineThinking(u.InlineThinking); err != nil {
			fail("inlineThinking: %v", err)
		}
		ids := make(map[string]bool)
		for _, m := range u.Models {
			switch {
			case strings.TrimSpace(m.ID) == "" || len(m.ID) > 200:
				fail("a model needs an id of at most 200 bytes")
			case ids[m.ID]:
				fail("model %q is listed twice", m.ID)
			case m.ContextTokens < 0 || m.MaxOutputTokens < 0:
				fail("model %q: contextTokens and maxOutputTokens must not be negative", m.ID)
			}
			ids[m.ID] = true
			if m.Deployment != nil {
				if !u.Azure {
					fail("model %q: deployment is for Azure upstreams (azure: true)", m.ID)
				}
				if err := checkDeployment(*m.Deployment); err != nil {
					fail("model %q: deployment %q %v", m.ID, *m.Deployment, err)
				}
			}
			if err := checkDefaults(m.Defaults, firstPositive(m.MaxOutputTokens, u.MaxOutputTokens)); err != nil {
				fail("model %q: defaults: %v", m.ID, err)
			}
			if err := checkInlineThinking(m.InlineThinking); err != nil {
				fail("model %q: inlineThinking: %v", m.ID, err)
			}
		}
	}
	if err := f.checkDefault(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkDefault refuses a default that names none of the configured
// models, by the id the Router gives it (see llm.Router), when no
// upstream discovers: with one that does, the default may be a model
// only its list holds, known at run time (a default no list holds is
// then passed over for the model marked default, else the first).
func (f *File) checkDefault() error {
	if f.Default == "" || slices.ContainsFunc(f.Upstreams, func(u UpstreamConfig) bool { return u.Discover }) {
		return nil
	}
	var ups []llm.Upstream
	for _, u := range f.Upstreams {
		up := llm.Upstream{Name: u.Name}
		for _, m := range u.Models {
			up.Models = append(up.Models, llm.ModelInfo{ID: m.ID})
		}
		ups = append(ups, up)
	}
	ids := llm.ConfiguredIDs(ups)
	if slices.Contains(ids, f.Default) {
		return nil
	}
	// The router also takes "<upstream>/<name>" for that upstream's model
	// of that name (llm.Router.ModelID).
	if up, name, ok := strings.Cut(f.Default, "/"); ok && slices.ContainsFunc(f.Upstreams, func(u UpstreamConfig) bool {
		return u.Name == up && slices.ContainsFunc(u.Models, func(m ModelConfig) bool { return m.ID == name })
	}) {
		return nil
	}
	return fmt.Errorf("default: %q is none of the models (%s), and no upstream discovers more", f.Default, strings.Join(ids, ", "))
}

// maxDeployment bounds a deployment's name, as an id's.
const maxDeployment = 200

// checkDeployment validates an Azure deployment's name: one URL path
// segment (it is sent escaped) that Azure could hold.
func checkDeployment(d string) error {
	switch {
	case d == "":
		return errors.New("is empty")
	case len(d) > maxDeployment:
		return fmt.Errorf("is longer than %d bytes", maxDeployment)
	case !utf8.ValidString(d):
		return errors.New("is not UTF-8")
	case d == "." || d == "..":
		return errors.New("is not a name")
	}
	for _, r := range d {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '/' || r == '\\' {
			return errors.New("must not hold spaces, control characters, '/' or '\\'")
		}
	}
	return nil
}

// checkDefaults validates default parameters like a conversation's.
func checkDefaults(d Defaults, maxOutput int) error {
	var maxTokens *int
	if d.MaxTokens != 0 {
		maxTokens = &d.MaxTokens
	}
	if err := llm.CheckParams(d.Temperature, d.TopP, maxTokens, d.Stop, maxOutput); err != nil {
		return err
	}
	return nil
}

// checkInlineThinking validates an inline thinking mode; absent ("") is
// the default.
func checkInlineThinking(m openai.InlineThinking) error {
	if m == "" {
		return nil
	}
	_, err := openai.ParseInlineThinking(string(m))
	return err
}

func firstPositive(v ...int) int {
	for _, n := range v {
		if n > 0 {
			return n
		}
	}
	return 0
}
