package reqtimeout

import (
	"context"
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

// TestBoundCountsFromStart: every bound of a request counts from its
// start (Start), so two in a row share one deadline, and a later one gets
// only what is left; without a recorded start a bound counts from now.
func TestBoundCountsFromStart(t *testing.T) {
	start := time.Now().Add(-time.Minute)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want func(now time.Time) time.Time
	}{
		{"started a minute ago", WithStart(context.Background(), start), func(time.Time) time.Time { return start.Add(time.Hour) }},
		{"no start recorded", context.Background(), func(now time.Time) time.Time { return now.Add(time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			first, cancel := Bound(tc.ctx, time.Hour)
			defer cancel()
			second, cancel2 := Bound(first, time.Hour)
			defer cancel2()
			d1, _ := first.Deadline()
			d2, _ := second.Deadline()
			if want := tc.want(before); d1.Before(want) || d1.After(tc.want(time.Now())) {
				t.Fatalf("deadline %v, want %v", d1, want)
			}
			if !d2.Equal(d1) {
				t.Fatalf("second bound's deadline %v, want the first's %v", d2, d1)
			}
			if d := Deadline(tc.ctx, time.Hour); d.Before(tc.want(before)) || d.After(tc.want(time.Now())) {
				t.Fatalf("Deadline %v, want %v", d, tc.want(before))
			}
		})
	}
}

// TestStart: the router's Start records when the request started, in
// the request's context, for the bounds to count from.
func TestStart(t *testing.T) {
	gin.SetMode(gin.TestMode)
	var got time.Time
	var ok bool
	r := gin.New()
	r.GET("/", Start, func(c *gin.Context) { got, ok = c.Request.Context().Value(startKey{}).(time.Time) })
	before := time.Now()
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if !ok || got.Before(before) || got.After(time.Now()) {
		t.Fatalf("recorded start %v (%v), want the request's start, after %v", got, ok, before)
	}
}
