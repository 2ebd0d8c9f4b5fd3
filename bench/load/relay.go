package load

import (
	"context"
	"fmt"

	"github.com/coder/websocket"

	"chatd/llm/fakeai"
)

// relayStream is one WebSocket to the minimal relay.
type relayStream struct {
	spec *Spec
	i    int
	tab  *tab
}

func setupRelay(ctx context.Context, spec *Spec) ([]stream, error) {
	streams := make([]stream, spec.Streams)
	expected := spec.expectedText()
	err := parallel(ctx, spec.Streams, 32, func(setupCtx context.Context, i int) error {
		c, _, err := websocket.Dial(setupCtx, spec.URL, &websocket.DialOptions{HTTPClient: plainDial})
		if err != nil {
			return fmt.Errorf("dial %s: %w", spec.URL, err)
		}
		t := newTab(ctx, c, expected)
		go t.read()
		streams[i] = &relayStream{spec: spec, i: i, tab: t}
		return nil
	})
	if err != nil {
		for _, s := range streams {
			if s != nil {
				s.(*relayStream).tab.close()
			}
		}
		return nil, err
	}
	return streams, nil
}

func (s *relayStream) run(ctx context.Context, r *recorder) {
	for a := range s.spec.Answers {
		sendAt := fakeai.MonotonicNanos()
		err := s.tab.write(ctx, map[string]any{"type": "send", "content": s.spec.prompt(s.i, a), "model": s.spec.Model})
		if err != nil {
			r.answered(s.i, "send: "+err.Error())
			return
		}
		end, err := waitAnswer(ctx, r, s.tab, sendAt)
		if err != nil {
			r.answered(s.i, err.Error())
			return
		}
		r.answered(s.i, end.why)
	}
}

func (s *relayStream) finish(res *Result, all *timings) {
	s.tab.close()
	s.tab.addTo(res, all)
}
