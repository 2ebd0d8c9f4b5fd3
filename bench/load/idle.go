package load

import (
	"context"
	"fmt"
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
	conns := make([]*websocket.Conn, spec.Conns)
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
			for {
				if _, _, err := c.Read(readCtx); err != nil {
					if readCtx.Err() == nil {
						mu.Lock()
						dropped++
						mu.Unlock()
					}
					return
				}
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
			c.CloseNow()
		}
	}
	wg.Wait()
	return dropped, err
}

func dialIdle(ctx context.Context, spec IdleSpec, i int) (*websocket.Conn, error) {
	if spec.Target == TargetChatd {
		return DialChatd(ctx, spec.URL, spec.Users[i%len(spec.Users)].Token, false)
	}
	c, _, err := websocket.Dial(ctx, spec.URL, &websocket.DialOptions{HTTPClient: plainDial})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", spec.URL, err)
	}
	return c, nil
}
