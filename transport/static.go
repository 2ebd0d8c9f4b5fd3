package transport

import (
	"io/fs"
	"net/http"

	"github.com/gin-gonic/gin"

	"chatd/frontend"
	"chatd/transport/httperr"
)

// webClient answers every request no route matched: a JSON 404 under
// /api, /ws and /metrics and for methods other than GET and HEAD; anything
// else goes to the web client's single-page-app handler (package frontend:
// hashed assets cached for a year, index.html for app paths). static nil
// serves the client built into the binary, or frontend's placeholder page
// when it was built without one.
func webClient(static fs.FS) gin.HandlerFunc {
	h := frontend.Handler()
	if static != nil {
		h = frontend.New(static, frontend.Options{})
	}
	return func(c *gin.Context) {
		p := c.Request.URL.Path
		if frontend.Reserved(p) || p == "/metrics" || (c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead) {
			httperr.AbortError(c, httperr.NotFound("no such route: "+c.Request.Method+" "+p))
			return
		}
		c.Set(routeKey, RouteStatic)
		h.ServeHTTP(c.Writer, c.Request)
	}
}
