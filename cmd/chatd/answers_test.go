package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMaxAnswersPerUser: CHATD_MAX_ANSWERS_PER_USER reaches the hub. With
// 1, a send into a second conversation while the user's first answer
// streams is refused 429 rate_limited; another user's send still starts.
func TestMaxAnswersPerUser(t *testing.T) {
	t.Parallel()
	s := start(t, testEnv(t.TempDir(), "CHATD_MAX_ANSWERS_PER_USER", "1", "CHATD_DEMO_DELAY", "1s"))
	token, first := registerAndCreate(t, s.url)
	st, body := call(t, "POST", s.url+"/api/conversations", token, map[string]string{"title": "second"})
	mustStatus(t, "create", st, 201, body)
	second := body["conversation"].(map[string]any)["id"].(string)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	running := postSSE(ctx, t, s.url, token, first, "hello")
	defer running.Body.Close()
	mustStatus(t, "the first send", running.StatusCode, 200, nil)
	awaitFrame(t, running.Body, "ack")

	refused := postSSE(ctx, t, s.url, token, second, "hello")
	defer refused.Body.Close()
	if refused.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second answer at once: %d, want 429", refused.StatusCode)
	}
	if data, _ := io.ReadAll(refused.Body); !strings.Contains(string(data), `"rate_limited"`) {
		t.Fatalf("a second answer at once: %s, want rate_limited", data)
	}

	st, body = call(t, "POST", s.url+"/api/auth/register", "", map[string]string{
		"email": "other@example.com", "password": "persistent pw", "name": "Other"})
	mustStatus(t, "register", st, 201, body)
	other := body["token"].(string)
	st, body = call(t, "POST", s.url+"/api/conversations", other, map[string]string{"title": "theirs"})
	mustStatus(t, "create", st, 201, body)
	theirs := postSSE(ctx, t, s.url, other, body["conversation"].(map[string]any)["id"].(string), "hello")
	defer theirs.Body.Close()
	mustStatus(t, "another user's send", theirs.StatusCode, 200, nil)
	awaitFrame(t, theirs.Body, "ack")
}

// postSSE posts a send of content over the SSE route; the caller closes the body.
func postSSE(ctx context.Context, t *testing.T, url, token, convID, content string) *http.Response {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"content": content})
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/api/conversations/"+convID+"/messages", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// awaitFrame reads an event stream until a frame of type typ.
func awaitFrame(t *testing.T, r io.Reader, typ string) {
	t.Helper()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		var f struct{ Type string }
		if ok && json.Unmarshal([]byte(line), &f) == nil && f.Type == typ {
			return
		}
	}
	t.Fatalf("the stream ended without a %s frame (%v)", typ, sc.Err())
}
