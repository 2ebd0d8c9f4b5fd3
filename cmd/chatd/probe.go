package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"chatd/llm/openai"
)

// probeTimeout bounds the start-up look at each upstream, its model list
// read in full.
const probeTimeout = 5 * time.Second

// maxProbeList bounds the model list the probe reads (OpenRouter's, the
// largest known, is about a tenth of it); a longer one is not looked into.
const maxProbeList = 16 << 20

// probeTarget is one upstream the start-up probe asks, with what its log
// lines name: the settings to check, and (for an upstreams file) which
// upstream.
type probeTarget struct {
	base, key      string
	headers, query map[string]string
	models         []string // the configured ids, looked for in the list
	who            []any    // log attributes naming the upstream
	settings       probeSettings
}

// probeSettings names, in the probe's log lines, the settings to check.
type probeSettings struct{ url, key, models string }

var (
	envSettings  = probeSettings{"OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODELS"}
	fileSettings = probeSettings{"its baseURL in CHATD_UPSTREAMS_FILE",
		"its apiKey (or apiKeyEnv) in CHATD_UPSTREAMS_FILE", "its models in CHATD_UPSTREAMS_FILE"}
)

// probeUpstream asks each OpenAI-compatible upstream (the one of
// OPENAI_BASE_URL, or each of CHATD_UPSTREAMS_FILE, named in the lines)
// for its model list once, at start, and logs a line naming the setting
// to check when answers would fail: a warning when it cannot be reached,
// when it has no model list there (404, or a body that is no list: a base
// URL without its /v1, the usual slip; worded "if", as some servers serve
// no list) and when the list lacks configured models; an error when it
// refuses the key, which only the operator can put right. Otherwise the
// first sign of a mistyped URL, a model server not started, a model it
// does not have or a wrong key is a user's failed answer. It never stops
// the start (the upstream may come up later) and does nothing for the
// demo model or an Azure upstream (see azureURL). It asks through a copy
// of client with the answers' redirect policy (openai.RedirectPolicy):
// a redirect to another server, which would take the key and headers
// there, is not followed but reported. It returns when every look is
// over or ctx ends.
func probeUpstream(ctx context.Context, cfg Config, client *http.Client, logger *slog.Logger) {
	hc := *client
	hc.CheckRedirect = openai.RedirectPolicy(hc.CheckRedirect)
	var looks sync.WaitGroup
	for _, t := range probeTargets(cfg) {
		looks.Go(func() { t.probe(ctx, &hc, logger) })
	}
	looks.Wait()
}

// probeTargets lists the upstreams of cfg the probe asks.
func probeTargets(cfg Config) []probeTarget {
	if cfg.Upstreams == nil {
		if !cfg.upstreamConfigured() || azureURL(cfg.OpenAIBaseURL) {
			return nil
		}
		return []probeTarget{{base: cfg.OpenAIBaseURL, key: cfg.OpenAIKey, models: cfg.OpenAIModels, settings: envSettings}}
	}
	var out []probeTarget
	for _, u := range cfg.Upstreams.Upstreams {
		if u.Azure || azureURL(u.BaseURL) {
			continue
		}
		t := probeTarget{base: u.BaseURL, key: u.APIKey, headers: u.Headers, query: u.Query,
			who: []any{slog.String("upstream", u.Name)}, settings: fileSettings}
		for _, m := range u.Models {
			t.models = append(t.models, m.ID)
		}
		out = append(out, t)
	}
	return out
}

// azureURL reports whether base is Azure OpenAI's: a deployment's URL
// (".../openai/deployments/NAME", given as a plain upstream with its
// api-version and api-key), or any on Azure's OpenAI hosts. Its model
// list, where there is one, is of models, not of the deployments a
// request names: the probe would report a working upstream as having no
// list, or every deployment as missing.
func azureURL(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	return strings.Contains(strings.ToLower(u.Path), "/openai/deployments/") ||
		strings.HasSuffix(host, ".openai.azure.com") || strings.HasSuffix(host, ".cognitiveservices.azure.com")
}

// request builds the request for t's model list.
func (t probeTarget) request(ctx context.Context) (*http.Request, error) {
	u, err := url.Parse(strings.TrimRight(t.base, "/") + "/models")
	if err != nil {
		return nil, err
	}
	if len(t.query) > 0 {
		q := u.Query()
		for k, v := range t.query {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if t.key != "" {
		req.Header.Set("Authorization", "Bearer "+t.key)
	}
	for k, v := range t.headers {
		req.Header.Set(k, v)
	}
	return req, nil
}

// scrub hides in text (an error that may quote the request's URL, full)
// the credentials of the URL and the values of t's query and headers.
func (t probeTarget) scrub(text, full string) string {
	text = scrubPassword(text, full)
	for _, extra := range []map[string]string{t.query, t.headers} {
		for _, v := range extra {
			if len(v) >= 4 { // a short one ("1") would garble the text and is no secret
				text = strings.ReplaceAll(text, url.QueryEscape(v), "xxxxx")
				text = strings.ReplaceAll(text, v, "xxxxx")
			}
		}
	}
	return text
}

// probe asks t for its model list and logs what answers would meet.
func (t probeTarget) probe(ctx context.Context, client *http.Client, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := t.request(ctx)
	if err != nil {
		return // loadConfig checked the URL
	}
	// Shown without the query an upstreams file adds, whose values, as
	// its headers', may be credentials.
	logger = logger.With(t.who...).With(slog.String("url", redactURI(strings.TrimRight(t.base, "/")+"/models")))
	resp, err := client.Do(req)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.Canceled):
		return // stopping
	case err != nil:
		logger.Warn("model upstream unreachable: answers will fail ('Could not reach the model provider') until it answers; check "+
			t.settings.url+" and that the server runs", slog.String("err", t.scrub(err.Error(), req.URL.String())))
		return
	}
	defer resp.Body.Close()
	if to, err := resp.Location(); err == nil && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		t.redirected(logger, resp.StatusCode, to, req.URL.String())
		return
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		// An error, not a warning: every answer fails until the operator
		// changes the key, and CHATD_LOG_LEVEL=error must show it.
		logger.Error("model upstream refused the API key: answers will fail until it accepts one; check "+t.settings.key,
			slog.Int("status", resp.StatusCode))
	case http.StatusNotFound:
		t.noList(logger, resp.StatusCode)
	case http.StatusOK:
		ids, ok := readModelList(resp.Body)
		switch {
		case ctx.Err() != nil:
		case !ok:
			t.noList(logger, resp.StatusCode)
		default:
			t.checkModels(logger, ids)
		}
	}
}

// redirected warns that t's model list redirects (with status, to to)
// where the client did not follow (openai.RedirectPolicy), as no answer
// does: to another server, which would get the key and headers. to is
// shown without credentials, query or fragment, and scrubbed as an
// error quoting full, the request's URL, is.
func (t probeTarget) redirected(logger *slog.Logger, status int, to *url.URL, full string) {
	shown := *to
	shown.User, shown.RawQuery, shown.ForceQuery, shown.Fragment, shown.RawFragment = nil, "", false, "", ""
	logger.Warn("model upstream redirected to another server: not followed, as its key and headers would go there; answers will fail "+
		"('The model provider's URL redirects to ...') until "+t.settings.url+" is where it leads",
		slog.Int("status", status), slog.String("to", t.scrub(shown.String(), full)))
}

// noList warns that t has no model list at its base URL, worded for a
// server that serves the API without one.
func (t probeTarget) noList(logger *slog.Logger, status int) {
	logger.Warn("model upstream has no model list at this URL: if "+t.settings.url+" is not where its OpenAI API is served, "+
		"answers will fail ('The model provider does not know this model or endpoint'); most servers serve it under /v1 "+
		"(Ollama: http://localhost:11434/v1)", slog.Int("status", status))
}

// checkModels warns, in one line, of t's configured models that ids (the
// list) lacks. An id without a tag matches the list's id:latest, as
// Ollama serves it, and one without "models/" the list's models/id, as
// Gemini's OpenAI API lists its models (models/gemini-2.0-flash), whose
// chat completions take them without it.
func (t probeTarget) checkModels(logger *slog.Logger, ids map[string]bool) {
	listed := func(id string) bool {
		return ids[id] || ids["models/"+id]
	}
	var missing []string
	for _, id := range t.models {
		if !listed(id) && (strings.Contains(id, ":") || !listed(id+":latest")) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		logger.Warn("model upstream does not list some configured models: answers with them will fail ('The model provider does not know this model or endpoint') unless it serves them unlisted; check "+
			t.settings.models, slog.String("missing", strings.Join(missing, ",")))
	}
}

// readModelList reads the ids of a model list ({"data": [{"id": ...}]});
// ok is false for a body that is no list (a web page, an error object).
func readModelList(body io.Reader) (ids map[string]bool, ok bool) {
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(body, maxProbeList)).Decode(&list); err != nil || list.Data == nil {
		return nil, false
	}
	ids = make(map[string]bool, len(list.Data))
	for _, raw := range list.Data {
		var m struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(raw, &m) == nil && m.ID != "" {
			ids[m.ID] = true // an entry of another shape is left out
		}
	}
	return ids, true
}
