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
// (CHATD_RESPONSE_WRITE_TIMEOUT, 30 s), not the stream's 10 s.
func TestLiveStreamAsSSEDecides(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	report := func(c *gin.Context) { c.String(200, "%v", liveStream(c)) }
	r.POST("/api/conversations/:id/messages", report)
	r.POST("/api/conversations/:id/regenerate", report)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	cases := []struct {
		path   string
		accept []string
		want   string
	}{
		{"messages", []string{"text/event-stream"}, "true"},
		{"messages", []string{"Text/Event-Stream"}, "true"},
		{"regenerate", []string{"application/json", "text/event-stream"}, "true"},
		{"messages", []string{"application/json;q=0.5, TEXT/EVENT-STREAM"}, "true"},
		{"messages", []string{"application/json"}, "false"},
		{"regenerate", nil, "false"},
	}
	for _, c := range cases {
		req, err := http.NewRequest("POST", srv.URL+"/api/conversations/0123456789abcdef01234567/"+c.path, strings.NewReader("{}"))
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
			t.Errorf("%s with Accept %q: live stream %s, want %s", c.path, c.accept, body, c.want)
		}
	}
}
