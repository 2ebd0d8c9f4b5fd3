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
		// An HTTP 429, or an error reported inside a 200 response with
		// code 429 (reportedError); a rate limit it only words (Status
		// 0) is shown as it is.
		return e.Status == http.StatusTooManyRequests
	case llm.KindConnection:
		return !errors.Is(err, errLasting)
	case llm.KindUpstream:
		// An HTTP 5xx, an error reported inside a 200 response with a
		// 5xx code (reportedError), or a finish reason saying the
		// upstream broke the answer off (brokenOff).
		return e.Status >= 500 || errors.Is(err, errBrokenOff)
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

// maxRetryAfter bounds a Retry-After: a longer wait, or one too large to
// read (it would overflow a time.Duration), counts as this long, past any
// sensible RetryMax, so that such a failure is never retried.
const maxRetryAfter = 24 * time.Hour

// retryAfter reads "retry-after-ms" (OpenAI) or "Retry-After" (seconds or
// an HTTP date), at most maxRetryAfter; 0 when absent, unreadable, not
// positive (a date in the past) or not a number (NaN).
func retryAfter(h http.Header) time.Duration {
	if h == nil {
		return 0
	}
	if v := h.Get("retry-after-ms"); v != "" {
		// NaN fails both comparisons; +Inf and 1e300 are long.
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			if ms >= float64(maxRetryAfter/time.Millisecond) {
				return maxRetryAfter
			}
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if digits(v) {
		// delay-seconds (RFC 9110: digits only); too many to parse is long.
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil || secs >= uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), maxRetryAfter)
	}
	return 0
}

// digits reports a non-empty string of ASCII digits.
func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
