// Package testport hands tests TCP ports on the loopback interface that
// stay free for them while what listens there is stopped and started
// again (a NATS node or a chatd process restarted on its port).
//
// A port taken with "127.0.0.1:0" comes from the kernel's ephemeral range,
// the range outgoing connections take their local ports from: while its
// server is down, any connection of the machine (the suite opens
// thousands) may take it, and the restart fails with "address already in
// use". Ports here are drawn at random outside that range and checked
// free. One process never hands out a port twice, and no two processes
// hand out the same one while both run: each port handed out is reserved
// for the process's lifetime by a lock on its byte of a file shared by
// every test process of the user (`go test ./...` runs several packages'
// tests at once, each a process of its own, and a port whose NATS node one
// test stopped for a moment must not become another package's).
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// lowest is the lowest port handed out: well above the ports services
// listen on by convention.
const lowest = 10000

var (
	mu    sync.Mutex
	given = make(map[int]bool)
)

// Free returns n distinct ports that were free a moment ago on 127.0.0.1,
// outside the kernel's ephemeral port range.
func Free(t testing.TB, n int) []int {
	t.Helper()
	ports, err := free(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// free is Free without a test: the error says why it found too few ports.
func free(n int) ([]int, error) {
	lo, hi := span(ephemeralRange())
	mu.Lock()
	defer mu.Unlock()
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries == 100*n+1000 {
			return nil, fmt.Errorf("testport: no free port in %d-%d after %d tries", lo, hi, tries)
		}
		p := lo + rand.IntN(hi-lo+1)
		if given[p] {
			continue
		}
		if !reserve(p) {
			continue // another test process's
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			release(p)
			continue // in use
		}
		lns = append(lns, ln)
		given[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// span is the larger of the two port ranges around the ephemeral range
// [elo, ehi]: below it from lowest, or above it.
func span(elo, ehi int) (lo, hi int) {
	if below, above := elo-1-lowest, 65535-(ehi+1); below >= above {
		return lowest, elo - 1
	}
	return ehi + 1, 65535
}

// ephemeralRange is the kernel's range of local ports for outgoing
// connections (Linux's default when it cannot be read).
func ephemeralRange() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	var l, h int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &l, &h); err != nil || l < 1 || h < l || h > 65535 {
		return lo, hi
	}
	return l, h
}
