// Package reqtimeout bounds how long a REST request may wait: the routes
// of transport/api and transport/auth run under its middleware, so every
// wait of theirs on the store (or for a hashing slot) ends with the
// request's bound (CHATD_REQUEST_TIMEOUT).
package reqtimeout

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"
)

// Middleware gives each request a context that ends d after the route
// starts; the handlers answer 503 when a wait ends with it.
func Middleware(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}
