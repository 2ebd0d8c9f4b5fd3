package transport

import (
	"io/fs"
	"net/http"
	"path"

	"github.com/gin-gonic/gin"

	"chatd/frontend"
	"chatd/transport/httperr"
)

// webClient answers every request no route matched: a JSON 404 under
// /api, /ws and /metrics (also once the path's empty and dot segments are
// removed: //api/x and /a/../api/x are API paths, which the web client,
// cleaning them, would otherwise answer with its page and a 200), a JSON
// 405 with Allow: GET, HEAD for any other method than those two elsewhere
// (the web client's paths take only them); anything else goes to the web
// client's single-page-app handler (package frontend: hashed assets cached
// for a year, index.html for app paths). static nil serves the client
// built into the binary, or frontend's placeholder page when it was built
// without one.
func webClient(static fs.FS) gin.HandlerFunc {
	h := frontend.Handler()
	if static != nil {
		h = frontend.New(static, frontend.Options{})
	}
	return func(c *gin.Context) {
		p := c.Request.URL.Path
		switch {
		case reserved(p) || reserved(path.Clean("/"+p)):
			httperr.AbortError(c, httperr.NotFound("no such route: "+c.Request.Method+" "+p))
		case c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead:
			c.Header("Allow", "GET, HEAD")
			httperr.AbortError(c, httperr.New(http.StatusMethodNotAllowed, httperr.CodeMethodNotAllowed, "method not allowed on this route"))
		default:
			c.Set(routeKey, RouteStatic)
			h.ServeHTTP(c.Writer, c.Request)
		}
	}
}

// reserved reports whether p belongs to the server rather than the web
// client: the API, the live channel and the metrics.
func reserved(p string) bool { return frontend.Reserved(p) || p == "/metrics" }
