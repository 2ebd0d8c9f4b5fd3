package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"chatd/hub/natsbus/natstest"
	"chatd/llm/fakeai"
	"chatd/persistence/ferret"
)

// clusterEnv is the environment of one instance of a test cluster.
func clusterEnv(t *testing.T, natsURLs []string, mongoURI, openai, id string) map[string]string {
	return testEnv(t.TempDir(),
		"MONGODB_URI", mongoURI, "MONGODB_DATABASE", "chatd_cluster",
		"CHATD_NATS_URL", strings.Join(natsURLs, ","), "CHATD_NATS_USER", "chatd",
		"CHATD_NATS_PASSWORD", "nats-hunter2-secret", "CHATD_INSTANCE_ID", id, "CHATD_LEASE_TTL", "2s",
		"JWT_SECRET", strings.Repeat("j", 32),
		"OPENAI_BASE_URL", openai, "OPENAI_API_KEY", "sk-test", "OPENAI_MODELS", "fake-mini")
}

// TestClusterStart runs two instances on one store and one NATS cluster:
// each joins the bus (readiness, logs without the NATS password), and the
// second one's start leaves the answer the first one is running alone (a
// single process marks answers left "streaming" as interrupted at start;
// in a cluster those belong to live instances), which then ends complete.
func TestClusterStart(t *testing.T) {
	t.Parallel()
	nc := natstest.Start(t, natstest.Options{User: "chatd", Password: "nats-hunter2-secret"})
	uri := ferret.Start(t)
	openai := fakeai.Start(t, fakeai.Options{}).URL
	a := start(t, clusterEnv(t, nc.URLs(), uri, openai, "web-a"))
	waitReady(t, a.url)
	token, convID := registerAndCreate(t, a.url)

	// An answer running on a: its message is stored "streaming".
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	firstDelta := make(chan struct{})
	ended := make(chan string, 1)
	go func() {
		ended <- sseAnswer(ctx, t, a.url, token, convID, "[[fake tokens=120 delay=25ms]] go", firstDelta)
	}()
	select {
	case <-firstDelta:
	case status := <-ended:
		t.Fatalf("the answer ended (%q) before its first delta", status)
	}

	b := start(t, clusterEnv(t, nc.URLs(), uri, openai, "web-b"))
	status, body := call(t, "GET", b.url+"/api/conversations/"+convID, token, nil)
	mustStatus(t, "read on b", status, 200, body)
	msgs := body["messages"].([]any)
	if got := msgs[len(msgs)-1].(map[string]any)["status"]; got != "streaming" {
		t.Fatalf("after the second instance started, the running answer is %v, want streaming", got)
	}
	if got := <-ended; got != "complete" {
		t.Fatalf("the answer ended %q, want complete", got)
	}
	waitReady(t, b.url)

	for _, s := range []*server{a, b} {
		logs := s.logs.String()
		if !strings.Contains(logs, `"msg":"joining the cluster"`) || !strings.Contains(logs, `"nats_auth":"user chatd"`) {
			t.Errorf("no cluster start line in the logs:\n%s", logs)
		}
		if strings.Contains(logs, "hunter2") {
			t.Errorf("the NATS password is in the logs:\n%s", logs)
		}
	}
	for _, s := range []*server{b, a} {
		if err := s.stop(); err != nil {
			t.Fatalf("stop: %v\n%s", err, s.logs)
		}
	}
}

// waitReady polls /readyz until it answers 200 (the store and the bus are
// usable).
func waitReady(t *testing.T, url string) {
	t.Helper()
	var last string
	waitFor(t, func() bool {
		res, err := http.Get(url + "/readyz")
		if err != nil {
			last = err.Error()
			return false
		}
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		last = b.String()
		return res.StatusCode == http.StatusOK
	})
	if t.Failed() {
		t.Logf("last /readyz: %s", last)
	}
}

// sseAnswer sends content over SSE, closes firstDelta at the first delta,
// and returns the done frame's status ("" if the stream ended without one).
func sseAnswer(ctx context.Context, t *testing.T, url, token, convID, content string, firstDelta chan<- struct{}) string {
	b, _ := json.Marshal(map[string]string{"content": content})
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/api/conversations/"+convID+"/messages", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("SSE send: %v", err)
		return ""
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var f struct{ Type, Status string }
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Errorf("frame %q: %v", line, err)
			return ""
		}
		switch f.Type {
		case "delta":
			if firstDelta != nil {
				close(firstDelta)
				firstDelta = nil
			}
		case "done":
			return f.Status
		}
	}
	return ""
}
