package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

// IdleSpec describes connections that are opened and then left idle.
type IdleSpec struct {
	// Target is TargetChatd (authenticated, Users spread round robin) or TargetRelay.
	Target string
	URL    string
	Users  []User
	Conns  int
	// SSE opens chatd's event streams (GET /api/events) instead of WebSockets.
	SSE bool
	// Parallel is how many connections are being opened at once; it defaults to 32.
	Parallel int
}

// Idle opens spec.Conns WebSockets, calls ready once they are all open,
// keeps them open (reading, so pings are answered) until ctx ends, then
// closes them. It returns how many connections the server closed on its own.
func Idle(ctx context.Context, spec IdleSpec, ready func()) (dropped int, err error) {
	if spec.Parallel <= 0 {
		spec.Parallel = 32
	}
	if spec.Target == TargetChatd && len(spec.Users) == 0 {
		return 0, fmt.Errorf("load: idle chatd connections need registered users")
	}
	conns := make([]idleConn, spec.Conns)
	var mu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	readCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	err = parallel(ctx, spec.Conns, spec.Parallel, func(ctx context.Context, i int) error {
		c, err := dialIdle(ctx, spec, i)
		if err != nil {
			return err
		}
		conns[i] = c
		wg.Go(func() {
			c.read(readCtx)
			if readCtx.Err() == nil {
				mu.Lock()
				dropped++
				mu.Unlock()
			}
		})
		return nil
	})
	if err == nil {
		ready()
		<-ctx.Done()
	}
	stop()
	for _, c := range conns {
		if c != nil {
			c.close()
		}
	}
	wg.Wait()
	return dropped, err
}

// idleConn is one open connection that is only read.
type idleConn interface {
	read(ctx context.Context) // until the connection ends or ctx does
	close()
}

func dialIdle(ctx context.Context, spec IdleSpec, i int) (idleConn, error) {
	switch {
	case spec.Target == TargetChatd && spec.SSE:
		return openEvents(ctx, spec.URL, spec.Users[i%len(spec.Users)].Token)
	case spec.Target == TargetChatd:
		c, err := DialChatd(ctx, spec.URL, spec.Users[i%len(spec.Users)].Token, false)
		return wsIdle{c}, err
	}
	c, _, err := websocket.Dial(ctx, spec.URL, &websocket.DialOptions{HTTPClient: plainDial})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", spec.URL, err)
	}
	return wsIdle{c}, nil
}

type wsIdle struct{ c *websocket.Conn }

func (w wsIdle) read(ctx context.Context) {
	for {
		if _, _, err := w.c.Read(ctx); err != nil {
			return
		}
	}
}

func (w wsIdle) close() { w.c.CloseNow() }

// sseIdle is chatd's user-wide event stream, GET /api/events.
type sseIdle struct{ body io.ReadCloser }

// openEvents opens the stream and waits for its first comment line.
func openEvents(ctx context.Context, baseURL, token string) (idleConn, error) {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, baseURL+"/api/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	res, err := plainDial.Do(req)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", req.URL, err)
	}
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(line, ":") {
		res.Body.Close()
		return nil, fmt.Errorf("open %s: HTTP %d, first line %q: %v", req.URL, res.StatusCode, line, err)
	}
	return sseIdle{res.Body}, nil
}

// read discards events until the stream ends; close ends it.
func (s sseIdle) read(context.Context) { _, _ = io.Copy(io.Discard, s.body) }

func (s sseIdle) close() { s.body.Close() }
