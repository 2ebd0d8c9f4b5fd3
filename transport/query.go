package transport

import (
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"chatd/transport/httperr"
)

// wellFormedQuery refuses, with 400 bad_request, a request to a route
// whose query string net/url cannot read whole (url.ParseQuery fails): a
// bad percent escape ("?q=50%"), a ';' between pairs, or more pairs than
// it takes. gin's c.Query reads the query through URL.Query, which drops
// such pairs silently (or all of them), so the route answered as if they
// were not sent: a malformed conversationId opened a user-wide event
// stream, a malformed q listed every conversation. It runs before the
// token check and the route, so a refused request spends no budget and
// takes no connection slot. Requests no route matched (the web client's
// pages, whose query the server never reads, and the JSON 404s and 405s)
// are left alone.
func wellFormedQuery(c *gin.Context) {
	if c.FullPath() == "" || c.Request.URL.RawQuery == "" {
		c.Next()
		return
	}
	if msg := queryProblem(c.Request.URL.RawQuery); msg != "" {
		httperr.AbortError(c, httperr.BadRequest("malformed query string: "+msg))
		return
	}
	c.Next()
}

// queryProblem says what in raw url.ParseQuery refuses, "" when nothing.
func queryProblem(raw string) string {
	_, err := url.ParseQuery(raw)
	var esc url.EscapeError
	switch {
	case err == nil:
		return ""
	case strings.Contains(raw, ";"):
		return "';' does not separate parameters (use '&'; write a ';' in a value as %3B)"
	case errors.As(err, &esc):
		return "invalid escape " + strconv.Quote(string(esc)) + " (write a '%' in a value as %25)"
	default:
		return err.Error()
	}
}
