package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"chatd/llm/fakeai"
)

// chatdStream is one chatd user asking for answers on its tabs.
type chatdStream struct {
	spec  *Spec
	i     int
	convs []string // a fresh conversation per answer
	tabs  []*tab   // tabs[0] sends; the others follow
	stall *tab     // the tab that stops reading, if any
}

// restClient is shared by every REST call of a process.
var restClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxIdleConns: 256}, Timeout: time.Minute}

func setupChatd(ctx context.Context, spec *Spec) ([]stream, error) {
	if len(spec.Users) == 0 {
		return nil, fmt.Errorf("load: the chatd target needs registered users")
	}
	streams := make([]stream, spec.Streams)
	expected := spec.expectedText()
	err := parallel(ctx, spec.Streams, 32, func(setupCtx context.Context, i int) error {
		u := spec.Users[i%len(spec.Users)]
		s := &chatdStream{spec: spec, i: i}
		for range spec.Answers {
			id, err := CreateConversation(setupCtx, spec.URL, u.Token)
			if err != nil {
				return err
			}
			s.convs = append(s.convs, id)
		}
		for k := range spec.Tabs {
			stall := spec.StallTab && k > 0 && k == spec.Tabs-1
			url := spec.URL
			if k > 0 && spec.FollowURL != "" {
				url = spec.FollowURL
			}
			c, err := DialChatd(setupCtx, url, u.Token, stall)
			if err != nil {
				return err
			}
			t := newTab(ctx, c, expected)
			go t.read()
			s.tabs = append(s.tabs, t)
			if stall {
				s.stall = t
			}
		}
		streams[i] = s
		return nil
	})
	if err != nil {
		for _, s := range streams {
			if s != nil {
				s.(*chatdStream).close()
			}
		}
		return nil, err
	}
	return streams, nil
}

// CreateConversation makes a titled conversation through the REST API, so
// that its first answer starts no title request, and returns its id.
func CreateConversation(ctx context.Context, baseURL, token string) (string, error) {
	var out struct {
		Conversation struct {
			ID string `json:"id"`
		} `json:"conversation"`
	}
	err := postJSON(ctx, baseURL+"/api/conversations", token, map[string]string{"title": "bench"}, http.StatusCreated, &out)
	return out.Conversation.ID, err
}

// postJSON posts body and decodes the answer, which must have status want.
func postJSON(ctx context.Context, url, token string, body any, want int, out any) error {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return postWith(ctx, url, h, body, want, out)
}

// postWith is postJSON with request headers h.
func postWith(ctx context.Context, url string, h http.Header, body any, want int, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header = h.Clone()
	req.Header.Set("Content-Type", "application/json")
	res, err := restClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		return fmt.Errorf("POST %s: status %d: %.200s", url, res.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

// DialChatd opens an authenticated WebSocket to chatd at baseURL
// (http://host:port) and reads its hello frame. With smallBuffer the
// socket's receive buffer is 4 KiB, so a reader that stops makes the
// server's writes back up quickly.
func DialChatd(ctx context.Context, baseURL, token string, smallBuffer bool) (*websocket.Conn, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	opts := &websocket.DialOptions{HTTPHeader: h, HTTPClient: dialClient(smallBuffer)}
	u := "ws" + strings.TrimPrefix(baseURL, "http") + "/ws"
	c, res, err := websocket.Dial(ctx, u, opts)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		return nil, fmt.Errorf("dial %s: %w (HTTP %d)", u, err, status)
	}
	_, data, err := c.Read(ctx)
	if err != nil || !bytes.Contains(data, []byte(`"type":"hello"`)) {
		c.CloseNow()
		return nil, fmt.Errorf("dial %s: no hello frame (%.80s): %v", u, data, err)
	}
	return c, nil
}

var (
	plainDial = &http.Client{}
	smallDial = &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}).DialContext}}
)

func dialClient(small bool) *http.Client {
	if small {
		return smallDial
	}
	return plainDial
}

func (s *chatdStream) run(ctx context.Context, r *recorder) {
	for a, conv := range s.convs {
		if err := s.answer(ctx, r, a, conv); err != nil {
			r.answered(s.i, err.Error())
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// answer has the followers subscribe to conv, sends prompt a on the first
// tab and waits for the answer's end on every reading tab.
func (s *chatdStream) answer(ctx context.Context, r *recorder, a int, conv string) error {
	for k, t := range s.tabs[1:] {
		if t == s.stall {
			if a > 0 {
				continue // it reads nothing after the first subscription
			}
			t.stallOnAck.Store(true)
		}
		id := fmt.Sprintf("sub-%d-%d", a, k)
		if err := t.write(ctx, map[string]any{"type": "subscribe", "id": id, "conversationId": conv}); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		if _, err := t.wait(ctx, "ack"); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	}
	sender := s.tabs[0]
	sendAt := fakeai.MonotonicNanos()
	err := sender.write(ctx, map[string]any{"type": "send", "id": fmt.Sprintf("send-%d", a),
		"conversationId": conv, "content": s.spec.prompt(s.i, a), "model": s.spec.Model})
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if _, err := sender.wait(ctx, "ack"); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	end, err := waitAnswer(ctx, r, sender, sendAt)
	if err != nil {
		return err
	}
	r.answered(s.i, end.why)
	for _, t := range s.tabs[1:] {
		if t == s.stall {
			continue
		}
		ev, err := t.wait(ctx, "done")
		if err != nil {
			return fmt.Errorf("follower: %w", err)
		}
		switch {
		case !ev.done.ok:
			r.mismatch()
		case ev.done.hash == end.hash:
		case s.spec.FollowURL != "" && s.spec.FollowURL != s.spec.URL:
			r.mergedByBus()
		default:
			r.mismatch()
		}
	}
	return nil
}

// waitAnswer waits for an answer's first token (recording the time to it
// from sendAt) and its end.
func waitAnswer(ctx context.Context, r *recorder, t *tab, sendAt int64) (answerEnd, error) {
	ev, err := t.wait(ctx, "first", "done")
	if err != nil {
		return answerEnd{}, err
	}
	if ev.kind == "first" {
		r.firstToken(ev.at - sendAt)
		if ev, err = t.wait(ctx, "done"); err != nil {
			return answerEnd{}, err
		}
	}
	return ev.done, nil
}

// drainStalled lets the stalled tab, if any, read again (see tab.drain).
func (s *chatdStream) drainStalled(d time.Duration) (stallOutcome, bool) {
	if s.stall == nil {
		return stallOutcome{}, false
	}
	return s.stall.drain(d), true
}

func (s *chatdStream) finish(res *Result, all *timings) {
	s.close()
	for _, t := range s.tabs {
		if t != s.stall {
			t.addTo(res, all)
		}
	}
}

// followerLateness is the lateness of the reading follower tabs' tokens;
// call it after finish.
func (s *chatdStream) followerLateness() []int64 {
	var out []int64
	for _, t := range s.tabs[1:] {
		if t != s.stall {
			out = append(out, t.times.lateness...)
		}
	}
	return out
}

func (s *chatdStream) close() {
	for _, t := range s.tabs {
		t.close()
	}
}
