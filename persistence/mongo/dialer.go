package mongo

import (
	"context"
	"errors"
	"net"
	"sync"
)

// errAbandoned fails a dial after the open it serves was abandoned.
var errAbandoned = errors.New("the open of the mongodb store was abandoned")

// openDialer dials the client's connections while Open runs and closes
// them all when the open is abandoned (a failed ping, a cancelled ctx, a
// failed set-up), before the client's Disconnect. Disconnect waits for the
// server monitor's check to end, and the driver (v2.10) cancels that check
// only when its signal reaches the check's listener: a Disconnect just as
// a check starts is missed, and the check's handshake then waits on a
// server that never answers for up to ConnectTimeout (its socket timeout),
// so a stop during start-up could take that long (up to 5 minutes, past
// systemd's stop timeout). Closing the check's connection ends it at once,
// and later dials fail, so no new check waits either. Once Open succeeds
// (keep), the connections stay the client's and later ones are not tracked.
type openDialer struct {
	dialer net.Dialer // the driver's default: a zero net.Dialer
	mu     sync.Mutex
	conns  []net.Conn // dialled while Open runs; nil once kept
	kept   bool       // Open succeeded: nothing is tracked any more
	closed bool       // abandoned: every dial fails
}

// DialContext dials address and, while Open runs, remembers the connection.
func (d *openDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.dialer.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	closed := d.closed
	if !closed && !d.kept {
		d.conns = append(d.conns, c)
	}
	d.mu.Unlock()
	if closed {
		_ = c.Close()
		return nil, errAbandoned
	}
	return c, nil
}

// keep leaves the connections dialled so far to the client and stops
// tracking new ones: Open succeeded.
func (d *openDialer) keep() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.kept, d.conns = true, nil
}

// abandon closes every connection dialled so far and fails every later dial.
func (d *openDialer) abandon() {
	d.mu.Lock()
	conns := d.conns
	d.closed, d.conns = true, nil
	d.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}
