package transport

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// headRequest marks a HEAD request routed as a GET (headAsGet): its value
// is the HEAD request itself.
type headRequest struct{}

// headAsGet answers HEAD on every GET route as the GET, without its body
// (RFC 9110 9.3.2): gin routes a HEAD only to HEAD routes, and answered
// 405 on the rest. It must be the engine's first middleware. A HEAD that
// matched no HEAD route but a GET one (gin's 405, whose Allow names GET)
// is routed again as a GET; the GET route's chain then runs, this first,
// with the HEAD request back in place, so the handlers, the log and the
// metrics see the HEAD. net/http drops what the handlers write for a HEAD
// and sends the Content-Length of what they wrote at once, as for the GET.
// A handler that streams (an event stream, a WebSocket) answers a HEAD
// with its headers alone, and returns.
func headAsGet(engine *gin.Engine) gin.HandlerFunc {
	return func(c *gin.Context) {
		if head, ok := c.Request.Context().Value(headRequest{}).(*http.Request); ok {
			c.Request = head
			c.Next()
			return
		}
		if c.Request.Method != http.MethodHead || c.FullPath() != "" || !slices.Contains(allowed(c), http.MethodGet) {
			c.Next()
			return
		}
		c.Writer.Header().Del("Allow")
		c.Status(http.StatusOK) // in place of the 405 gin set
		get := c.Request.WithContext(context.WithValue(c.Request.Context(), headRequest{}, c.Request))
		get.Method = http.MethodGet
		c.Request = get
		engine.HandleContext(c)
		c.Abort()
	}
}

// allowed is the methods of the Allow header gin set on a 405.
func allowed(c *gin.Context) []string {
	v := c.Writer.Header().Get("Allow")
	if v == "" {
		return nil
	}
	return strings.Split(v, ", ")
}

// allowWithHead adds HEAD after GET to the Allow header of a 405, since
// every GET route answers HEAD too (headAsGet).
func allowWithHead(c *gin.Context) {
	methods := allowed(c)
	i := slices.Index(methods, http.MethodGet)
	if i < 0 || slices.Contains(methods, http.MethodHead) {
		return
	}
	c.Header("Allow", strings.Join(slices.Insert(methods, i+1, http.MethodHead), ", "))
}
