package openai

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"chatd/llm"
)

// retryable reports failures worth another try before the first token.
func retryable(err error) bool {
	var e *llm.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Kind {
	case llm.KindRateLimited:
		// An HTTP 429; a rate limit reported inside a 200 response
		// (Status 0) is shown as it is, like other errors reported there.
		return e.Status == http.StatusTooManyRequests
	case llm.KindConnection:
		return !errors.Is(err, errLasting)
	case llm.KindUpstream:
		return e.Status >= 500
	case llm.KindTimeout:
		// An HTTP 408; chatd's own timeouts (Status 0) are not retried.
		return e.Status == http.StatusRequestTimeout
	}
	return false
}

// backoff returns the wait before retry number try+1: the upstream's
// Retry-After when it gave one (Stream retries only one within RetryMax),
// else RetryBase doubled per try with jitter (between half and all of
// it); both capped at RetryMax.
func (c *Client) backoff(try int, after time.Duration) time.Duration {
	if after > 0 {
		return min(after, c.opts.RetryMax)
	}
	d := c.opts.RetryMax
	if try < 30 {
		d = min(c.opts.RetryBase<<try, c.opts.RetryMax)
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter reads "retry-after-ms" (OpenAI) or "Retry-After" (seconds or
// an HTTP date); 0 when absent or unreadable.
func retryAfter(h http.Header) time.Duration {
	if h == nil {
		return 0
	}
	if v := h.Get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}
