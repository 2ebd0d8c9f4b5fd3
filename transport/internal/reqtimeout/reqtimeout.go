// Package reqtimeout bounds how long a request may wait, with one deadline
// per request (CHATD_REQUEST_TIMEOUT) that starts when the request does:
// the token check in front of an API request (auth.Authenticator's
// middleware) and the route behind it (the routes of transport/api and
// transport/auth run under Middleware) share it, so every wait of theirs
// on the store (or for a hashing slot) ends with it, and the route gets
// what the check left. The router marks each request's start (Start);
// a bound is counted from there.
package reqtimeout

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"
)

// startKey keys a request's start time in its context.
type startKey struct{}

// Start records when the request started in its context, the time every
// bound of the request counts from. The router runs it before anything
// else.
func Start(c *gin.Context) {
	c.Request = c.Request.WithContext(WithStart(c.Request.Context(), time.Now()))
	c.Next()
}

// WithStart returns ctx marking a request that started at t.
func WithStart(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, startKey{}, t)
}

// Bound returns a context of ctx that ends d after its request started
// (Start), so that every wait bounded by it, one after the other, shares
// one deadline: a later one gets what the earlier ones left. A context
// with no start recorded counts from now.
func Bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, Deadline(ctx, d))
}

// Deadline is the end of Bound's bound: d after the start of ctx's
// request (Start), or d from now when ctx has no start recorded. A route
// that bounds only some of its waits by the request's deadline (the
// export, until its first bytes) counts them against it.
func Deadline(ctx context.Context, d time.Duration) time.Time {
	start, ok := ctx.Value(startKey{}).(time.Time)
	if !ok {
		start = time.Now()
	}
	return start.Add(d)
}

// Middleware gives each request a context that ends d after the request
// started (Bound), not d after the route does: what ran before it (the
// token check) is counted in. The handlers answer 503 when a wait ends
// with it.
func Middleware(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := Bound(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}
