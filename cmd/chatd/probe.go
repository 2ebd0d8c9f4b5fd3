package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// probeTimeout bounds the start-up look at the upstream.
const probeTimeout = 5 * time.Second

// probeUpstream asks the one OpenAI-compatible upstream of OPENAI_BASE_URL
// for its model list once, at start, and logs a warning naming the setting
// to check when it cannot be reached (an error when it refuses the key,
// which only the operator can put right): otherwise the
// first sign of a mistyped URL, a model server not started or a wrong key
// is a user's failed answer. It never stops the start (the upstream may
// come up later) and does nothing for the demo model or an upstreams file.
// It returns when the look is over or ctx ends.
func probeUpstream(ctx context.Context, cfg Config, client *http.Client, logger *slog.Logger) {
	if cfg.Upstreams != nil || !cfg.upstreamConfigured() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	url := strings.TrimRight(cfg.OpenAIBaseURL, "/") + "/models"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return // loadConfig checked the URL
	}
	if cfg.OpenAIKey != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.OpenAIKey)
	}
	shown := slog.String("url", redactURI(url))
	resp, err := client.Do(req)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.Canceled):
		return // stopping
	case err != nil:
		logger.Warn("model upstream unreachable: answers will fail ('Could not reach the model provider') until it answers; check OPENAI_BASE_URL and that the server runs",
			shown, slog.String("err", scrubPassword(err.Error(), url)))
		return
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		// An error, not a warning: every answer fails until the operator
		// changes the key, and CHATD_LOG_LEVEL=error must show it.
		logger.Error("model upstream refused the API key: answers will fail until it accepts one; check OPENAI_API_KEY",
			shown, slog.Int("status", resp.StatusCode))
	}
}
