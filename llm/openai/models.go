package openai

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"chatd/llm"
)

// Models implements llm.Catalog: it asks GET <BaseURL>/models (Azure lists
// models, not deployments). Name is the id; nothing is marked default.
// ContextTokens is read from the fields servers use to report a model's
// context window: context_length (OpenRouter, LM Studio), max_model_len
// (vLLM), context_window (Groq and others), max_context_length (Mistral).
// A model whose capabilities say it does not chat (Mistral's
// completion_chat false) is left out.
//
// The list is read by chatd, not go-openai, entry by entry and field by
// field (see parseModelList): an entry or a field of an unexpected type
// is left out (and logged once per list) without costing the others. A
// body that is no model list (a web page, an error object, more than
// maxListBody bytes, no JSON) is an error saying so.
func (c *Client) Models(ctx context.Context) ([]llm.ModelInfo, error) {
	st := &attempt{list: &listBody{}}
	_, err := c.api.ListModels(context.WithValue(ctx, attemptKey{}, st))
	switch {
	case (err != nil || st.list.err != nil) && ctx.Err() != nil:
		return nil, ctxError(ctx)
	case err != nil:
		return nil, c.listFailed(classify(err, st, c.secrets))
	case st.list.err != nil:
		return nil, c.listFailed(listError(st.list.err, nil, c.secrets))
	}
	entries, ignored, err := parseModelList(st.list.data)
	if err != nil {
		return nil, c.listFailed(listError(err, st.list.data, c.secrets))
	}
	c.logIgnored(ignored)
	out := make([]llm.ModelInfo, 0, len(entries))
	for _, m := range entries {
		out = append(out, llm.ModelInfo{ID: m.id, Name: m.id, ContextTokens: m.window, Reasoning: c.kind.thinks(m.id)})
	}
	return out, nil
}

// listFailure is a failed model list. Its text, which the list's caller
// logs, names the base URL as logs show it and the cause cleaned of
// secrets (see cleanCause), as a failed chat request's log line does: an
// *llm.Error's own text leaves out its cause. It unwraps to the error.
type listFailure struct {
	url   string
	cause string
	err   error
}

func (e *listFailure) Error() string {
	return fmt.Sprintf("list upstream models at %s: %s", e.url, e.cause)
}

func (e *listFailure) Unwrap() error { return e.err }

// listFailed wraps a model list's error (see listFailure).
func (c *Client) listFailed(err error) error {
	return &listFailure{url: c.shown, cause: cleanCause(err, c.secrets), err: err}
}

// maxLoggedIgnored bounds the ignored values a log line names.
const maxLoggedIgnored = 5

// logIgnored logs, in one line, the values of a model list left out,
// unless the previous list left out the same (a list is read again every
// minute or so).
func (c *Client) logIgnored(ignored []string) {
	all := strings.Join(ignored, "\n")
	c.ignored.Lock()
	same := all == c.ignored.last
	c.ignored.last = all
	c.ignored.Unlock()
	if same || len(ignored) == 0 {
		return
	}
	shown := ignored[:min(len(ignored), maxLoggedIgnored)]
	for i, s := range shown {
		shown[i] = clean(s, c.secrets)
	}
	host := ""
	if u, err := url.Parse(c.opts.BaseURL); err == nil {
		host = u.Host
	}
	c.log.Warn("llm upstream model list: values of an unexpected type ignored",
		"host", host, "count", len(ignored), "ignored", strings.Join(shown, "; "))
}
