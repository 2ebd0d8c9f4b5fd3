package main

import (
	"bufio"
	"bytes"
	"chatd/internal/syncbuf"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/persistence/ferret"
	"chatd/persistence/sqlite"
)

const testTimeout = 60 * time.Second

// server is one in-process run of chatd.
type server struct {
	url    string
	logs   *syncbuf.Buffer
	cancel context.CancelFunc
	done   chan error
}

// testEnv is the base configuration of a test server: an ephemeral port,
// its own data directory, cheap bcrypt.
func testEnv(dataDir string, extra ...string) map[string]string {
	env := map[string]string{
		"CHATD_ADDR": "127.0.0.1:0", "CHATD_DATA_DIR": dataDir, "CHATD_BCRYPT_COST": "4",
		"CHATD_SHUTDOWN_GRACE": "5s",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

// start runs chatd until the test ends (or stop).
func start(t *testing.T, env map[string]string) *server {
	t.Helper()
	return startWith(t, env, hooks{})
}

// startWith is start with h (its ready is start's own).
func startWith(t *testing.T, env map[string]string, h hooks) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{logs: &syncbuf.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	addr := make(chan net.Addr, 1)
	h.ready = func(a net.Addr) { addr <- a }
	go func() { s.done <- runWith(ctx, envOf(env), s.logs, h) }()
	select {
	case a := <-addr:
		s.url = "http://" + a.String()
	case err := <-s.done:
		cancel()
		t.Fatalf("run ended before listening: %v\nlogs:\n%s", err, s.logs)
	case <-time.After(testTimeout):
		cancel()
		t.Fatalf("chatd did not start within %s\nlogs:\n%s", testTimeout, s.logs)
	}
	t.Cleanup(func() { _ = s.stop() })
	return s
}

// stop cancels run (as SIGTERM does) and returns what it returned.
func (s *server) stop() error {
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err // later calls see it too
		return err
	case <-time.After(testTimeout):
		return context.DeadlineExceeded
	}
}

// call sends a JSON request and decodes a JSON answer (if any).
func call(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	var m map[string]any
	data, _ := io.ReadAll(res.Body)
	if len(data) > 0 {
		_ = json.Unmarshal(data, &m)
	}
	return res.StatusCode, m
}

func mustStatus(t *testing.T, what string, got, want int, body map[string]any) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %d, want %d (%v)", what, got, want, body)
	}
}

// registerAndCreate registers an account and creates a conversation.
func registerAndCreate(t *testing.T, url string) (token, convID string) {
	t.Helper()
	st, body := call(t, "POST", url+"/api/auth/register", "", map[string]string{
		"email": "keeper@example.com", "password": "persistent pw", "name": "Keeper"})
	mustStatus(t, "register", st, 201, body)
	token = body["token"].(string)
	st, body = call(t, "POST", url+"/api/conversations", token, map[string]string{"title": "Survives restarts"})
	mustStatus(t, "create", st, 201, body)
	return token, body["conversation"].(map[string]any)["id"].(string)
}

// TestRestartKeepsData: data and sessions survive a restart on the same
// data directory, and answers a crash left streaming come back interrupted.
func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s1 := start(t, testEnv(dir))
	token, convID := registerAndCreate(t, s1.url)
	if err := s1.stop(); err != nil {
		t.Fatalf("first run ended with %v\n%s", err, s1.logs)
	}
	if !strings.Contains(s1.logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop in the logs:\n%s", s1.logs)
	}
	info, err := os.Stat(filepath.Join(dir, "jwt-secret"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("jwt-secret: %v, mode %v", err, info.Mode())
	}

	// Between runs, leave an answer "streaming" as a crash would.
	leaveStreaming(t, dir, convID, "hi", "half an ans")

	s2 := start(t, testEnv(dir))
	status, body := call(t, "GET", s2.url+"/api/conversations/"+convID, token, nil)
	mustStatus(t, "read after restart with the old token", status, 200, body)
	if body["conversation"].(map[string]any)["title"] != "Survives restarts" {
		t.Fatalf("conversation after restart: %v", body)
	}
	msgs := body["messages"].([]any)
	if len(msgs) != 2 || msgs[1].(map[string]any)["status"] != "interrupted" || msgs[1].(map[string]any)["content"] != "half an ans" {
		t.Fatalf("messages after restart: %v", msgs)
	}
	status, body = call(t, "POST", s2.url+"/api/auth/login", "", map[string]string{"email": "keeper@example.com", "password": "persistent pw"})
	mustStatus(t, "login after restart", status, 200, body)
	if err := s2.stop(); err != nil {
		t.Fatalf("second run: %v", err)
	}
}

func TestProductionRefusesWeakSecret(t *testing.T) {
	t.Parallel()
	for name, secret := range map[string]string{"short": "too-short-secret", "missing": ""} {
		t.Run(name, func(t *testing.T) {
			env := testEnv(t.TempDir(), "CHATD_ENV", "production", "JWT_SECRET", secret, "CHATD_BCRYPT_COST", "12")
			listened := false
			var out syncbuf.Buffer
			err := run(context.Background(), envOf(env), &out, func(net.Addr) { listened = true })
			if err == nil || listened {
				t.Fatalf("production with a %s secret started (err %v)", name, err)
			}
			if !strings.Contains(err.Error(), "JWT_SECRET") || !strings.Contains(err.Error(), "32") {
				t.Fatalf("unclear error: %v", err)
			}
			if secret != "" && strings.Contains(err.Error()+out.String(), secret) {
				t.Fatal("the secret was printed")
			}
			if _, err := os.Stat(filepath.Join(env["CHATD_DATA_DIR"], "jwt-secret")); err == nil {
				t.Fatal("production generated a secret file")
			}
		})
	}
}

func TestProductionStartsWithStrongSecret(t *testing.T) {
	t.Parallel()
	secret := "a-production-secret-of-forty-bytes-long!"
	s := start(t, testEnv(t.TempDir(), "CHATD_ENV", "production", "JWT_SECRET", secret, "CHATD_BCRYPT_COST", "12"))
	status, body := call(t, "GET", s.url+"/readyz", "", nil)
	mustStatus(t, "readyz", status, 200, body)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.logs.String(), secret) {
		t.Fatal("the JWT secret is in the logs")
	}
}

// TestSecretRotation follows docs/deploy.md's rotation of JWT_SECRET on
// one data directory: a session made under the old secret keeps working
// once the new secret signs with the old one accepted (and no log line
// shows either secret), and ends only when the old secret is dropped.
func TestSecretRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	oldS, newS := "the old secret, thirty-two bytes or more", "the new secret, thirty-two bytes or more"
	authed := func(s *server, token string) int {
		status, _ := call(t, "GET", s.url+"/api/conversations", token, nil)
		return status
	}

	s1 := start(t, testEnv(dir, "JWT_SECRET", oldS))
	oldToken, _ := registerAndCreate(t, s1.url)
	if err := s1.stop(); err != nil {
		t.Fatal(err)
	}

	s2 := start(t, testEnv(dir, "JWT_SECRET", newS, "JWT_SECRET_ACCEPTED", oldS))
	if st := authed(s2, oldToken); st != 200 {
		t.Fatalf("the old secret accepted: a session of the old secret got %d", st)
	}
	st, body := call(t, "POST", s2.url+"/api/auth/login", "", map[string]string{"email": "keeper@example.com", "password": "persistent pw"})
	mustStatus(t, "login while rotating", st, 200, body)
	newToken := body["token"].(string)
	if err := s2.stop(); err != nil {
		t.Fatal(err)
	}
	logs := s2.logs.String()
	if !strings.Contains(logs, "JWT_SECRET_ACCEPTED") || strings.Contains(logs, oldS) || strings.Contains(logs, newS) {
		t.Fatalf("the log should say a second secret is accepted, without either secret:\n%s", logs)
	}

	s3 := start(t, testEnv(dir, "JWT_SECRET", newS))
	if st := authed(s3, oldToken); st != 401 {
		t.Errorf("the old secret dropped: its session got %d, want 401", st)
	}
	if st := authed(s3, newToken); st != 200 {
		t.Errorf("a session signed while rotating got %d under the new secret alone", st)
	}
}

// TestUnreachableMongo: a MongoDB that does not answer stops the start
// within CHATD_DB_CONNECT_TIMEOUT, naming the host, the variables to check
// and never the password.
func TestUnreachableMongo(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostPort := ln.Addr().String()
	ln.Close() // nothing listens there now
	env := testEnv(t.TempDir(), "MONGODB_URI", "mongodb://chatd:hunter2secret@"+hostPort+"/chatd?authSource=admin",
		"CHATD_DB_CONNECT_TIMEOUT", "1s")
	// The port chatd is given: while it waits for MongoDB, a connection
	// there must be refused (a proxy then tries another instance), not
	// held in the backlog of a listener nobody serves yet.
	own, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := own.Addr().String()
	own.Close()
	env["CHATD_ADDR"] = addr
	var out syncbuf.Buffer
	began := time.Now()
	ran := make(chan error, 1)
	go func() { ran <- run(context.Background(), envOf(env), &out, func(net.Addr) { t.Error("it listened") }) }()
	accepted := 0
	for done := false; !done; {
		select {
		case err = <-ran:
			done = true
		case <-time.After(10 * time.Millisecond): // a dial every 10 ms until run returns
			if c, derr := net.DialTimeout("tcp", addr, time.Second); derr == nil {
				accepted++
				c.Close()
			}
		}
	}
	took := time.Since(began)
	if accepted > 0 {
		t.Errorf("%d connections to %s accepted while the store was being opened, want all refused", accepted, addr)
	}
	if err == nil {
		t.Fatal("started without a database")
	}
	if took > 5*time.Second {
		t.Fatalf("gave up after %v, want about 1s", took)
	}
	all := err.Error() + out.String()
	for _, want := range []string{"MONGODB_URI: no MongoDB answered at " + hostPort + " within 1s (CHATD_DB_CONNECT_TIMEOUT)",
		"or unset MONGODB_URI for the embedded SQLite store"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if strings.Contains(all, "hunter2secret") {
		t.Fatalf("the password leaked:\n%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "mongodb://xxxxx@"+hostPort) {
		t.Fatalf("the log does not show the redacted URI:\n%s", out.String())
	}
}

// TestFerretEndToEnd runs the whole server on MongoDB (an in-process
// FerretDB): accounts, a conversation, a streamed demo answer over SSE, and
// a restart that finds everything again.
func TestFerretEndToEnd(t *testing.T) {
	t.Parallel()
	uri := ferret.Start(t)
	env := testEnv(t.TempDir(), "MONGODB_URI", uri, "MONGODB_DATABASE", "chatd_e2e")
	s := start(t, env)
	if !strings.Contains(s.logs.String(), `"store":"mongodb"`) {
		t.Fatalf("not on MongoDB:\n%s", s.logs)
	}
	token, convID := registerAndCreate(t, s.url)

	status, body := call(t, "GET", s.url+"/api/models", token, nil)
	mustStatus(t, "models", status, 200, body)
	if m := body["models"].([]any); len(m) != 1 || m[0].(map[string]any)["demo"] != true {
		t.Fatalf("models: %v", body)
	}

	text, doneStatus := streamAnswer(t, s.url, token, convID, "Hello over SSE")
	if doneStatus != "complete" || !strings.Contains(text, "Hello over SSE") {
		t.Fatalf("answer %q ended %q", text, doneStatus)
	}
	status, body = call(t, "GET", s.url+"/api/conversations?q=over+sse", token, nil)
	mustStatus(t, "search", status, 200, body)
	if len(body["conversations"].([]any)) != 1 {
		t.Fatalf("search found %v", body)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	s2 := start(t, env)
	status, body = call(t, "GET", s2.url+"/api/conversations/"+convID, token, nil)
	mustStatus(t, "read after restart", status, 200, body)
	msgs := body["messages"].([]any)
	if len(msgs) != 2 {
		t.Fatalf("messages after restart: %v", msgs)
	}
	answer := msgs[1].(map[string]any)
	if answer["status"] != "complete" || answer["content"] != text {
		t.Fatalf("stored answer %v, streamed %q", answer, text)
	}
	status, _ = call(t, "DELETE", s2.url+"/api/conversations/"+convID, token, nil)
	mustStatus(t, "delete", status, 204, nil)
	status, body = call(t, "POST", s2.url+"/api/auth/logout", token, nil)
	mustStatus(t, "logout", status, 204, body)
	status, body = call(t, "GET", s2.url+"/api/auth/me", token, nil)
	mustStatus(t, "me after logout", status, 401, body)
}

// streamAnswer sends content over the SSE route and reads the stream to
// its done frame; it returns the answer's text and final status.
func streamAnswer(t *testing.T, url, token, convID, content string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	res := postSSE(ctx, t, url, token, convID, content)
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		data, _ := io.ReadAll(res.Body)
		t.Fatalf("SSE send: %d %s", res.StatusCode, data)
	}
	var text strings.Builder
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var f struct {
			Type, Text, Status string
			Seq                int
		}
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("frame %q: %v", line, err)
		}
		switch f.Type {
		case "delta":
			text.WriteString(f.Text)
			if f.Seq != len(text.String()) {
				t.Fatalf("seq %d after %d bytes", f.Seq, text.Len())
			}
		case "done":
			return text.String(), f.Status
		}
	}
	t.Fatalf("the stream ended without done (%v); text so far %q", sc.Err(), text.String())
	return "", ""
}

// TestGracefulShutdown: a request in flight when the signal comes still
// gets its answer, and run returns nil.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := start(t, testEnv(t.TempDir()))
	token, convID := registerAndCreate(t, s.url)

	// A slow upload: the request is in flight when shutdown begins. With
	// "Expect: 100-continue" the client sends the body only once the
	// handler reads it, so the first Write returning proves the handler runs.
	pr, pw := io.Pipe()
	result := make(chan int, 1)
	var reqErr error
	go func() {
		client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: testTimeout, DisableKeepAlives: true}}
		req, _ := http.NewRequest("PATCH", s.url+"/api/conversations/"+convID, pr)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Expect", "100-continue")
		res, err := client.Do(req)
		if err != nil {
			reqErr = err
			result <- -1
			return
		}
		res.Body.Close()
		result <- res.StatusCode
	}()
	if _, err := pw.Write([]byte(`{"title":`)); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	waitFor(t, func() bool { return strings.Contains(s.logs.String(), `"msg":"shutting down"`) })
	if _, err := pw.Write([]byte(`"renamed during shutdown"}`)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if got := <-result; got != 200 {
		t.Fatalf("the in-flight request got %d (%v)\n%s", got, reqErr, s.logs)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := http.Get(s.url + "/healthz"); err == nil {
		t.Fatal("still accepting connections after run returned")
	}
}

// TestShutdownDelay: with CHATD_SHUTDOWN_DELAY, a signal first turns
// /readyz 503 while the server still accepts connections and answers, so
// a load balancer polling /readyz moves traffic away before the listener
// closes; then the shutdown runs as usual. Before, /readyz turned 503 only
// as the listener closed, so no new connection could ever see it. The
// test ends the delay itself once it has checked the server during it
// (hooks.delayOver), so a delay of a minute takes no minute here, and the
// checks cannot race the delay's end.
func TestShutdownDelay(t *testing.T) {
	t.Parallel()
	const delay = time.Minute
	asked := make(chan time.Duration, 1)
	over := make(chan time.Time)
	s := startWith(t, testEnv(t.TempDir(), "CHATD_SHUTDOWN_DELAY", delay.String()), hooks{
		delayOver: func(d time.Duration) <-chan time.Time { asked <- d; return over },
	})
	endDelay := sync.OnceFunc(func() { close(over) })
	t.Cleanup(endDelay) // before start's stop, should a check fail
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	select {
	case d := <-asked:
		if d != delay {
			t.Fatalf("waits a delay of %s, CHATD_SHUTDOWN_DELAY is %s", d, delay)
		}
	case err := <-stopped:
		t.Fatalf("run returned without a shutdown delay (%v)\nlogs:\n%s", err, s.logs)
	case <-time.After(testTimeout):
		t.Fatalf("no shutdown delay began\nlogs:\n%s", s.logs)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // a new connection each
	res, err := client.Get(s.url + "/readyz")
	if err != nil {
		t.Fatalf("readyz during the delay: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz during the delay: %d", res.StatusCode)
	}
	if res, err = client.Get(s.url + "/healthz"); err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz during the delay: %v %v", res, err)
	}
	res.Body.Close()
	if strings.Contains(s.logs.String(), `"msg":"shutting down"`) {
		t.Fatalf("the shutdown began during the delay\nlogs:\n%s", s.logs)
	}
	endDelay()
	if err := <-stopped; err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := client.Get(s.url + "/healthz"); err == nil {
		t.Fatal("still accepting connections after run returned")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestListenFailsFirst: a CHATD_ADDR that cannot be listened on (a port
// another program holds, an address of no interface here) stops the start
// before the data directory or the store is touched, with an error that
// names CHATD_ADDR and says what to do. (A port below 1024 as a user without
// the privilege, the third case listen names, is TestPrivilegedPort's.)
func TestListenFailsFirst(t *testing.T) {
	t.Parallel()
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() }) // after the parallel subtests
	cases := []struct {
		name, addr string
		want       []string
	}{
		{"port in use", held.Addr().String(), []string{"CHATD_ADDR: " + held.Addr().String() + " is in use by another program", "CHATD_ADDR=:8081"}},
		{"not an address of this machine", "192.0.2.1:8080", []string{"CHATD_ADDR: 192.0.2.1:8080 is not an address of this machine", "(:8080)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "data")
			var out syncbuf.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := run(ctx, envOf(testEnv(dataDir, "CHATD_ADDR", c.addr)), &out, func(net.Addr) { t.Error("it listened"); cancel() })
			if err == nil {
				t.Fatal("started")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, serr := os.Stat(dataDir); !os.IsNotExist(serr) {
				t.Errorf("the data directory was made before the listen failed (stat: %v)\nlogs:\n%s", serr, out.String())
			}
		})
	}
}

// leaveStreaming stores, in the conversation convID of keeper@example.com
// in the SQLite store of dataDir, a question and its answer left
// streaming with text, as a crash leaves them.
func leaveStreaming(t *testing.T, dataDir, convID, question, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dataDir, "chatd.db")})
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.UserByEmail(ctx, "keeper@example.com")
	if err != nil {
		t.Fatal(err)
	}
	q := persistence.Message{ConversationID: convID, OwnerID: u.ID, Role: persistence.RoleUser, Content: question, Status: persistence.StatusComplete}
	if err := st.InsertMessage(ctx, &q); err != nil {
		t.Fatal(err)
	}
	a := persistence.Message{ConversationID: convID, OwnerID: u.ID, ParentID: q.ID, Role: persistence.RoleAssistant, Content: text, Status: persistence.StatusStreaming}
	if err := st.InsertMessage(ctx, &a); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
