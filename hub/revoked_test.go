package hub

import (
	"sync"
	"testing"

	"chatd/hub/protocol"
)

// sessionSub is a subscriber opened with a token version, recording how
// it was closed.
type sessionSub struct {
	*fakeSub
	tv     int64
	mu     sync.Mutex
	closed []protocol.CloseCode
}

func (s *sessionSub) TokenVersion() int64 { return s.tv }
func (s *sessionSub) Close(code protocol.CloseCode, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = append(s.closed, code)
}

func (s *sessionSub) closes() []protocol.CloseCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]protocol.CloseCode(nil), s.closed...)
}

// TestCloseRevoked: the connections of a session older than the user's
// current one are closed with 4401; those of the current session, those
// of other users and those that do not say their session stay open.
func TestCloseRevoked(t *testing.T) {
	t.Parallel()
	h := New(Options{Store: newMemStore(), Model: &scriptModel{}})
	old := &sessionSub{fakeSub: newSub("u1"), tv: 1}
	older := &sessionSub{fakeSub: newSub("u1"), tv: 0}
	current := &sessionSub{fakeSub: newSub("u1"), tv: 2}
	other := &sessionSub{fakeSub: newSub("u2"), tv: 0}
	plain := newSub("u1") // no Session: left alone
	for _, s := range []Subscriber{old, older, current, other, plain} {
		h.Register(s)
	}
	if n := h.CloseRevoked("u1", 2); n != 2 {
		t.Errorf("closed %d connections, want the 2 of older sessions", n)
	}
	cases := []struct {
		name string
		sub  *sessionSub
		want int
	}{{"version 1 of 2", old, 1}, {"version 0 of 2", older, 1}, {"the current version", current, 0}, {"another user", other, 0}}
	for _, c := range cases {
		got := c.sub.closes()
		if len(got) != c.want || (c.want == 1 && got[0] != protocol.CloseUnauthorized) {
			t.Errorf("%s: closed %v, want %d close(s) with %d", c.name, got, c.want, protocol.CloseUnauthorized)
		}
	}
	if n := h.CloseRevoked("u1", 0); n != 0 {
		t.Errorf("nothing is older than version 0, yet %d were closed", n)
	}
}
