package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub/natsbus/natstest"
	"chatd/internal/syncbuf"
	"chatd/llm/fakeai"
	"chatd/persistence/ferret"
)

// TestClusterStartKeepsLiveAnswers: with CHATD_NATS_URL set, a second
// instance starting on the shared MongoDB store leaves the answer the first
// one is streaming alone (the single-process start-up sweep would have
// marked it interrupted), /readyz of both reports the bus ready, and the
// answer ends complete. The answer stream is sized from the configuration
// (frames kept for the longest answer plus 5 minutes).
func TestClusterStartKeepsLiveAnswers(t *testing.T) {
	t.Parallel()
	nc := natstest.Start(t, natstest.Options{User: "chatd", Password: "nats pw"})
	fake := fakeai.Start(t, fakeai.Options{})
	mongoURI := ferret.Start(t)
	env := func(id string) map[string]string {
		return testEnv(t.TempDir(), "MONGODB_URI", mongoURI, "OPENAI_API_KEY", "sk-test",
			"OPENAI_BASE_URL", fake.URL, "OPENAI_MODELS", "fake-mini",
			"JWT_SECRET", strings.Repeat("k", 32),
			"CHATD_NATS_URL", strings.Join(nc.URLs(), ","), "CHATD_NATS_USER", "chatd",
			"CHATD_NATS_PASSWORD", "nats pw", "CHATD_INSTANCE_ID", id, "CHATD_LEASE_TTL", "5s", // past a stall under -race
			"CHATD_MAX_ANSWER_DURATION", "30m", "CHATD_NATS_STREAM_MAX_BYTES", "256MiB",
			"CHATD_LOGIN_MAX_FAILURES_ACCOUNT", "2")
	}
	s1 := start(t, env("first"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("first instance logs:\n%s", s1.logs)
		}
	})
	waitReadyz(t, s1.url)
	token, convID := registerAndCreate(t, s1.url)
	ws := dialLive(t, s1.url, token)
	writeLive(t, ws, map[string]any{"type": "send", "id": "1", "conversationId": convID,
		// 8 s (was 3 s, which the second instance's start under -race on a
		// loaded machine could outlast: the answer then reads complete).
		"content": "keep streaming [[fake tokens=800 delay=10ms]]"})
	msgID := readLive(t, ws, func(f liveFrame) bool { return f.Type == "ack" }).MessageID
	var text strings.Builder
	text.WriteString(readLive(t, ws, func(f liveFrame) bool { return f.Type == "delta" }).Text)

	s2 := start(t, env("second"))
	st, body := call(t, "GET", s2.url+"/api/conversations/"+convID, token, nil)
	mustStatus(t, "thread on the second instance", st, http.StatusOK, body)
	for _, m := range body["messages"].([]any) {
		msg := m.(map[string]any)
		if msg["id"] == msgID && msg["status"] != "streaming" {
			t.Fatalf("the second instance's start turned the first's running answer %v", msg["status"])
		}
	}
	if strings.Contains(s2.logs.String(), "marked interrupted") {
		t.Fatalf("the second instance swept answers at start:\n%s", s2.logs)
	}
	waitReadyz(t, s2.url)
	checkAnswerStream(t, nc, 35*time.Minute, 256<<20, 2*int64(30*time.Minute/(5*time.Millisecond))+16)

	for {
		f := readLive(t, ws, func(f liveFrame) bool { return f.MessageID == msgID && (f.Type == "delta" || f.Type == "done") })
		if f.Type == "done" {
			if f.Status != "complete" || text.String() != fakeai.ExpectedText(fakeai.Config{Tokens: 800}) {
				t.Fatalf("answer ended %s with %d bytes", f.Status, text.Len())
			}
			break
		}
		text.WriteString(f.Text)
	}
	// Failed logins count for the cluster: one on each instance uses up
	// the account's two from this address.
	for i, attempt := range []struct {
		s        *server
		password string
		want     int
	}{{s1, "a wrong guess", http.StatusUnauthorized}, {s2, "another guess", http.StatusUnauthorized},
		{s1, "persistent pw", http.StatusTooManyRequests}} {
		st, body := call(t, "POST", attempt.s.url+"/api/auth/login", "",
			map[string]string{"email": "keeper@example.com", "password": attempt.password})
		mustStatus(t, fmt.Sprintf("login %d", i), st, attempt.want, body)
	}
	for _, s := range []*server{s1, s2} {
		logs := s.logs.String()
		if !strings.Contains(logs, `"msg":"joining the cluster"`) || !strings.Contains(logs, `"nats_auth":"user chatd"`) {
			t.Errorf("no cluster start line in the logs:\n%s", logs)
		}
		if strings.Contains(logs, "session keys differ") {
			t.Errorf("instances with the same JWT secret said they differ:\n%s", logs)
		}
		if strings.Contains(logs, "nats pw") {
			t.Errorf("the NATS password is in the logs:\n%s", logs)
		}
	}
}

// TestClusterJWTSecretsDiffer: two instances of one cluster started with
// different JWT secrets (a token of one is refused by the other) each say
// so in their log, naming the other, without any secret; two with the
// same secret (TestClusterStartKeepsLiveAnswers) say nothing.
func TestClusterJWTSecretsDiffer(t *testing.T) {
	t.Parallel()
	nc := natstest.Start(t, natstest.Options{User: "chatd", Password: "nats pw"})
	mongoURI := ferret.Start(t)
	secrets := map[string]string{"web-a": strings.Repeat("a", 32), "web-b": strings.Repeat("b", 32)}
	servers := map[string]*server{}
	for id, secret := range secrets {
		servers[id] = start(t, testEnv(t.TempDir(), "MONGODB_URI", mongoURI, "OPENAI_API_KEY", "sk-test",
			"OPENAI_BASE_URL", "http://127.0.0.1:1/v1", "OPENAI_MODELS", "fake-mini", "JWT_SECRET", secret,
			"CHATD_NATS_URL", strings.Join(nc.URLs(), ","), "CHATD_NATS_USER", "chatd",
			"CHATD_NATS_PASSWORD", "nats pw", "CHATD_INSTANCE_ID", id, "CHATD_LEASE_TTL", "3s")) // past a stall under -race
	}
	a, b := servers["web-a"], servers["web-b"]
	waitReadyz(t, a.url)
	waitReadyz(t, b.url)
	token, _ := registerAndCreate(t, a.url)
	if st, body := call(t, "GET", b.url+"/api/conversations", token, nil); st != http.StatusUnauthorized {
		t.Fatalf("web-b answered %d to a token of web-a: %v", st, body)
	}
	for id, s := range servers {
		waitFor(t, func() bool { return strings.Contains(s.logs.String(), `"msg":"session keys differ between instances`) })
		logs := s.logs.String()
		other := "web-a"
		if id == "web-a" {
			other = "web-b"
		}
		if !strings.Contains(logs, `"other_instance":"`+other) || !strings.Contains(logs, `"refused_here":true`) {
			t.Errorf("%s's log does not name %s as refused:\n%s", id, other, logs)
		}
		for _, secret := range secrets {
			if strings.Contains(logs, secret) {
				t.Errorf("a JWT secret is in %s's log", id)
			}
		}
	}
}

// waitReadyz polls /readyz until it answers 200 (the bus connects in the background).
func waitReadyz(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		res, err := http.Get(url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz of %s never turned 200", url)
		}
		time.Sleep(20 * time.Millisecond) // polling a status, not synchronising
	}
}

// checkAnswerStream checks the limits the instances gave chatd's answer
// stream.
func checkAnswerStream(t *testing.T, c *natstest.Cluster, maxAge time.Duration, maxBytes, perAnswer int64) {
	t.Helper()
	nc, err := nats.Connect(strings.Join(c.URLs(), ","), nats.UserInfo("chatd", "nats pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	st, err := js.Stream(ctx, "CHATD_ANSWERS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if cfg.MaxAge != maxAge || cfg.MaxBytes != maxBytes || cfg.MaxMsgsPerSubject != perAnswer {
		t.Errorf("answer stream keeps frames %s, %d bytes, %d per answer; want %s, %d, %d",
			cfg.MaxAge, cfg.MaxBytes, cfg.MaxMsgsPerSubject, maxAge, maxBytes, perAnswer)
	}
}

// TestNATSNotJoinedAtStart: a CHATD_NATS_URL where no NATS answers (a
// mistyped port, something else listening there) with a working MongoDB
// does not hang the start nor leave the newcomer with reconnect lines
// alone: chatd serves (/readyz 503), says within joinWait, in plain words,
// that it has not joined the cluster, naming CHATD_NATS_URL and its value,
// and stops within seconds. With NATS running it says it joined instead.
// (Once NATS answers, "joined the cluster" follows a warning: not tested.)
func TestNATSNotJoinedAtStart(t *testing.T) {
	t.Parallel()
	mongoURI := ferret.Start(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "nats://" + closed.Addr().String()
	closed.Close()                                  // nothing listens there now
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never speaks NATS
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	nc := natstest.Start(t, natstest.Options{Nodes: 1}) // a cluster of 3 may take longer than joinWait to elect its leaders
	cases := []struct {
		name, url string
		joins     bool
	}{
		{"nothing listens", closedURL, false},
		{"not a NATS server", "nats://" + silent.Addr().String(), false},
		{"NATS runs", strings.Join(nc.URLs(), ","), true},
	}
	const notJoined = `"msg":"not joined to the cluster: no usable NATS at CHATD_NATS_URL within 1s;`
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, testEnv(t.TempDir(), "MONGODB_URI", mongoURI, "JWT_SECRET", strings.Repeat("k", 32),
				"CHATD_NATS_URL", c.url))
			listening := time.Now()
			said := notJoined
			if c.joins {
				said = `"msg":"joined the cluster"`
			}
			waitFor(t, func() bool { return strings.Contains(s.logs.String(), said) })
			if took := time.Since(listening); took > joinWait+5*time.Second {
				t.Errorf("said %s after %s, want within %s", said, took, joinWait)
			}
			logs := s.logs.String()
			if c.joins {
				// Whether a warning comes before the join is watchJoin's
				// logic (TestWatchJoin); a loaded machine under -race may
				// take joinWait to join.
				waitReadyz(t, s.url)
			} else {
				for _, w := range []string{"Check CHATD_NATS_URL", `"nats":["` + c.url + `"]`, "/readyz answers 503 until it joins"} {
					if !strings.Contains(logs, w) {
						t.Errorf("the log does not say %q:\n%s", w, logs)
					}
				}
				if st, body := call(t, "GET", s.url+"/readyz", "", nil); st != http.StatusServiceUnavailable {
					t.Errorf("/readyz answered %d %v without NATS, want 503", st, body)
				}
			}
			stopped := time.Now()
			if err := s.stop(); err != nil {
				t.Fatalf("stop: %v\n%s", err, s.logs)
			}
			if took := time.Since(stopped); took > 10*time.Second {
				t.Errorf("took %s to stop", took)
			}
		})
	}
}

// fakeHealth is a bus whose Health fails until its fails-th call.
type fakeHealth struct {
	mu    sync.Mutex
	calls int
	fails int // -1: never healthy
}

func (f *fakeHealth) Health(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fails < 0 || f.calls <= f.fails {
		return errors.New("no NATS")
	}
	return nil
}

// TestWatchJoin: the start says it has not joined the cluster only when
// the bus is not usable within the wait, and says when it joined.
func TestWatchJoin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		fails      int
		wait       time.Duration
		warn, join bool
	}{
		{"usable at once", 0, time.Hour, false, true},
		{"usable after a few tries within the wait", 3, time.Hour, false, true},
		{"never usable", -1, time.Millisecond, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs syncbuf.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, nil))
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() {
				defer close(done)
				watchJoin(ctx, Config{}, &fakeHealth{fails: tc.fails}, tc.wait, logger)
			}()
			if tc.join {
				<-done // it returns once joined
			} else {
				waitFor(t, func() bool { return strings.Contains(logs.String(), "not joined to the cluster") })
				cancel()
				<-done
			}
			cancel()
			out := logs.String()
			if got := strings.Contains(out, "not joined to the cluster"); got != tc.warn {
				t.Errorf("warned %v, want %v:\n%s", got, tc.warn, out)
			}
			if got := strings.Contains(out, `"msg":"joined the cluster"`); got != tc.join {
				t.Errorf("said joined %v, want %v:\n%s", got, tc.join, out)
			}
		})
	}
}
