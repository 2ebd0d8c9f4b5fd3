package natstest

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// errorsTB records Errorf instead of failing the test.
type errorsTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *errorsTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestNodeOnATakenPort: a node whose port another process holds fails at
// once and says why, instead of waiting out the ready timeout in silence.
func TestNodeOnATakenPort(t *testing.T) {
	t.Parallel()
	rec := &errorsTB{TB: t}
	c := Start(rec, Options{Nodes: 1})
	c.Kill(0)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", c.nodes[0].clientPort))
	if err != nil {
		t.Fatalf("take the node's port: %v", err)
	}
	start := time.Now()
	c.startNode(0)
	took := time.Since(start)
	_ = ln.Close()
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "address already in use") {
		t.Fatalf("errors %q, want one naming the port in use", rec.errs)
	}
	if took > c.opts.ReadyTimeout/2 {
		t.Fatalf("the failed start took %v (ready timeout %v)", took, c.opts.ReadyTimeout)
	}
	c.startNode(0) // the port is free again
	c.WaitReady()
	if len(rec.errs) != 1 {
		t.Fatalf("restart on the freed port: %q", rec.errs[1:])
	}
}
