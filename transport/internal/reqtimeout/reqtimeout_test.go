package reqtimeout

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// TestMiddleware: the handler's context ends within the bound, and ends
// once the route is done; a context already ended stays so.
func TestMiddleware(t *testing.T) {
	gin.SetMode(gin.TestMode)
	for _, d := range []time.Duration{time.Millisecond, time.Hour} {
		var deadline time.Time
		var ok bool
		var done <-chan struct{}
		r := gin.New()
		r.GET("/", Middleware(d), func(c *gin.Context) {
			deadline, ok = c.Request.Context().Deadline()
			done = c.Request.Context().Done()
		})
		start := time.Now()
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		if !ok {
			t.Fatalf("bound %v: the handler's context has no deadline", d)
		}
		if deadline.Before(start) || deadline.After(time.Now().Add(d)) {
			t.Fatalf("bound %v: deadline %v is not within the bound of the request's start %v", d, deadline, start)
		}
		select {
		case <-done:
		default:
			t.Fatalf("bound %v: the context outlived its route", d)
		}
	}
}
