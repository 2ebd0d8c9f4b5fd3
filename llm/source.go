package llm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"chatd/internal/gate"
)

// source is one upstream of a Router with its cached model list. The list
// is fetched by a background goroutine, one at a time, never under mu:
// callers get the last list at once (a stale one while a fresh one is
// fetched), and wait, at most FirstListWait from the fetch's start, only
// while the upstream has never been listed: for its first list, and for
// a list asked again after one that failed quickly (an upstream down at
// start, coming back), not after one that hung.
type source struct {
	up      Upstream
	ttl     time.Duration
	log     *slog.Logger
	fetches *gate.Gate // runs the fetches, so that Router.Close waits for them (nil: not waited for)

	mu        sync.Mutex
	listed    []ModelInfo // the last good list, filtered and sorted
	ok        bool        // listed was fetched at least once
	fetchedAt time.Time
	retryAt   time.Time
	lastErr   error
	fetching  chan struct{} // closed when the running fetch ends; nil when none runs
	startedAt time.Time     // when the running (or last) fetch started
	lastTook  time.Duration // how long the last fetch took; 0 before one ended
}

// models returns the upstream's configured models, then the listed ones it
// does not configure; err is the last list failure when there is no list.
// A configured model without a context window takes the one the list
// reports for it. A model is marked Reasoning when its Streamer (a
// Thinker) says so now, as well as when it was configured or listed so.
func (s *source) models(ctx, base context.Context, wait time.Duration) ([]ModelInfo, error) {
	out, err := s.merged(ctx, base, wait)
	if t, ok := s.up.Streamer.(Thinker); ok {
		for i := range out {
			out[i].Reasoning = out[i].Reasoning || t.Thinks(out[i].ID)
		}
	}
	return out, err
}

// merged returns the configured models, then the listed ones (see models).
func (s *source) merged(ctx, base context.Context, wait time.Duration) ([]ModelInfo, error) {
	out := make([]ModelInfo, 0, len(s.up.Models))
	for _, m := range s.up.Models {
		m.Upstream, m.UpstreamLabel = s.up.Name, s.up.Label
		out = append(out, m)
	}
	if s.up.Catalog == nil {
		return out, nil
	}
	listed, err := s.cached(ctx, base, wait)
	for _, m := range listed {
		i := slices.IndexFunc(out, func(o ModelInfo) bool { return o.ID == m.ID })
		switch {
		case i < 0:
			out = append(out, m)
		case out[i].ContextTokens == 0:
			out[i].ContextTokens = m.ContextTokens
		}
	}
	return out, err
}

// cached returns the cached list, starting a fetch when it is stale. A
// running fetch is waited for only while the upstream has no list yet and
// its last fetch (if any) ended within wait, and only until wait after the
// fetch started (or ctx ends): once listed, and after a fetch that hung,
// callers get what there is at once.
func (s *source) cached(ctx, base context.Context, wait time.Duration) ([]ModelInfo, error) {
	s.mu.Lock()
	now := time.Now()
	stale := !s.ok || now.Sub(s.fetchedAt) >= s.ttl
	if stale && s.fetching == nil && !now.Before(s.retryAt) {
		done := make(chan struct{})
		if s.startFetch(func() { s.fetch(base, done) }) {
			s.startedAt, s.fetching = now, done
		}
	}
	list, err, done := s.listed, s.lastErr, s.fetching
	first := !s.ok && done != nil && s.lastTook < wait
	wait -= now.Sub(s.startedAt)
	first = first && wait > 0
	s.mu.Unlock()
	if !first {
		return list, errIfEmpty(list, err)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listed, errIfEmpty(s.listed, s.lastErr)
}

// unlisted says why the source has no list of the models it asks for
// (nil: it has one, or asks for none): its last failure, else its first
// list still on its way.
func (s *source) unlisted() error {
	if s.up.Catalog == nil {
		return nil
	}
	s.mu.Lock()
	ok, last := s.ok, s.lastErr
	s.mu.Unlock()
	switch up := (*Error)(nil); {
	case ok:
		return nil
	case errors.As(last, &up):
		return &Error{Kind: up.Kind, Status: up.Status, Err: last,
			Message: fmt.Sprintf("%s cannot list its models: %s", s.up.Label, up.Message)}
	case last != nil:
		return &Error{Kind: KindConnection, Err: last, Message: fmt.Sprintf("%s cannot list its models.", s.up.Label)}
	}
	return &Error{Kind: KindTimeout, Message: fmt.Sprintf("%s has not listed its models yet.", s.up.Label)}
}

func errIfEmpty(list []ModelInfo, err error) error {
	if len(list) > 0 {
		return nil
	}
	return err
}

// fetch asks the upstream for its models and stores the outcome; it closes
// done when it ends.
func (s *source) fetch(base context.Context, done chan struct{}) {
	defer close(done)
	ctx, cancel := context.WithTimeout(base, s.up.ListTimeout)
	defer cancel()
	list, err := s.up.Catalog.Models(ctx)
	kept := make([]ModelInfo, 0, len(list))
	var left []string
	for _, m := range list {
		if !s.up.Filter(m.ID) {
			left = append(left, m.ID)
			continue
		}
		info := s.up.Discovered
		info.ID, info.Name, info.Demo, info.Default = m.ID, m.ID, false, false
		info.Upstream, info.UpstreamLabel = s.up.Name, s.up.Label
		if m.ContextTokens > 0 {
			info.ContextTokens = m.ContextTokens
		}
		info.Reasoning = info.Reasoning || m.Reasoning
		kept = append(kept, info)
	}
	if len(left) > 0 {
		s.log.Debug("llm upstream models left out as no chat models", "upstream", s.up.Name, "models", left)
	}
	slices.SortFunc(kept, func(a, b ModelInfo) int { return strings.Compare(a.ID, b.ID) })
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.fetching, s.lastTook = nil, max(now.Sub(s.startedAt), time.Nanosecond)
	if err != nil {
		s.lastErr = err
		s.retryAt = now.Add(min(5*time.Second, s.ttl))
		if base.Err() == nil { // not cut by Router.Close
			s.log.Warn("llm upstream model list failed", "upstream", s.up.Name, "err", err, "cached", len(s.listed))
		}
		return
	}
	s.listed, s.ok, s.fetchedAt, s.lastErr = kept, true, now, nil
}

// startFetch runs fetch on a goroutine the Router's Close waits for
// (fetches), and reports whether it did: not once closed. A source built
// without a Router's fetches (nil) runs it as before they existed,
// waited for by nobody.
func (s *source) startFetch(fetch func()) bool {
	if s.fetches == nil {
		go fetch()
		return true
	}
	return s.fetches.Go(fetch)
}
