package transport

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestLiveStreamAsSSEDecides: a send or regenerate is left to the live
// channel's own write deadlines exactly when the SSE handler streams it,
// whatever the case of the media type or however many Accept lines carry
// it; otherwise it would stream under the REST responses' deadline
// (CHATD_RESPONSE_WRITE_TIMEOUT, 30 s), not the stream's 10 s. The REST
// page of older messages (GET, the send's route pattern) always has the
// REST deadline: before, asked for with Accept: text/event-stream, it had
// none, and a client that stopped reading held its answer (up to 500
// messages) in the server's memory for as long as it kept the connection.
func TestLiveStreamAsSSEDecides(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	report := func(c *gin.Context) { c.String(200, "%v", liveStream(c)) }
	r.POST("/api/conversations/:id/messages", report)
	r.POST("/api/conversations/:id/regenerate", report)
	r.GET("/api/conversations/:id/messages", report)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	cases := []struct {
		method, path string
		accept       []string
		want         string
	}{
		{"POST", "messages", []string{"text/event-stream"}, "true"},
		{"POST", "messages", []string{"Text/Event-Stream"}, "true"},
		{"POST", "regenerate", []string{"application/json", "text/event-stream"}, "true"},
		{"POST", "messages", []string{"application/json;q=0.5, TEXT/EVENT-STREAM"}, "true"},
		{"POST", "messages", []string{"application/json"}, "false"},
		{"POST", "regenerate", nil, "false"},
		{"GET", "messages", []string{"text/event-stream"}, "false"},
		{"GET", "messages", nil, "false"},
	}
	for _, c := range cases {
		req, err := http.NewRequest(c.method, srv.URL+"/api/conversations/0123456789abcdef01234567/"+c.path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range c.accept {
			req.Header.Add("Accept", a)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != c.want {
			t.Errorf("%s %s with Accept %q: live stream %s, want %s", c.method, c.path, c.accept, body, c.want)
		}
	}
}
