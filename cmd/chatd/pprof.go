package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"syscall"
	"time"
)

// startPprof serves the runtime profiles of net/http/pprof under
// /debug/pprof/ on addr, which loadConfig checked is a loopback address.
// The listener is separate from the public one, so profiles are never
// reachable through the main port or a proxy in front of it. stop shuts it
// down.
func startPprof(addr string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		other := 6061
		if _, port, serr := net.SplitHostPort(addr); serr == nil {
			if n, perr := net.LookupPort("tcp", port); perr == nil {
				other = portBeside(n)
			}
		}
		return nil, fmt.Errorf("CHATD_PPROF_ADDR: %s is in use by another program: stop it, or serve the profiles on another port, e.g. CHATD_PPROF_ADDR=127.0.0.1:%d, or unset CHATD_PPROF_ADDR: %w", addr, other, err)
	}
	if err != nil {
		return nil, fmt.Errorf("CHATD_PPROF_ADDR: listen for pprof on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("pprof server stopped", slog.String("err", err.Error()))
		}
	}()
	logger.Info("pprof listening", slog.String("addr", ln.Addr().String()))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
		<-done
	}, nil
}

// pprofApart refuses a CHATD_PPROF_ADDR (pprof, loopback) on the port of
// CHATD_ADDR (addr) where the two collide: one of them on every interface
// (Go listens on [::] for "", 0.0.0.0 and ::, for IPv4 too), or both on
// the same address (listenIP: localhost is the address it resolves to,
// ::ffff:127.0.0.1 is 127.0.0.1). The profiles would take the port
// first, and chatd then stop blaming CHATD_ADDR's port as in use by
// another program. Two loopback addresses apart (127.0.0.1 and ::1, or
// 127.0.0.2) do not collide, nor does port 0 (the system's choice).
func (r *configReader) pprofApart(addr, pprof string) {
	if pprof == "" {
		return
	}
	host, port, err := net.SplitHostPort(addr)
	pprofHost, pprofPort, perr := net.SplitHostPort(pprof)
	if err != nil || perr != nil {
		return // each said already
	}
	n, err := net.LookupPort("tcp", port)
	pn, perr := net.LookupPort("tcp", pprofPort)
	if err != nil || perr != nil || n == 0 || n != pn {
		return
	}
	ip, ok := listenIP(host)
	pprofIP, pprofOK := listenIP(pprofHost)
	everywhere := (ok && ip.IsUnspecified()) || (pprofOK && pprofIP.IsUnspecified())
	if host == pprofHost || everywhere || (ok && pprofOK && ip == pprofIP) {
		r.fail("CHATD_PPROF_ADDR", "%q is on the port of CHATD_ADDR (%s): serve the profiles on a port of their own, such as 127.0.0.1:%d", pprof, addr, portBeside(n))
	}
}

// listenIP is the address net.Listen("tcp", host:port) binds: host's
// own (an IPv4-mapped one as its IPv4 address, as Go binds it), the
// unspecified one for "", else the first IPv4 address the name resolves
// to (the first address when it has none), as Go's listener picks it;
// false when the name does not resolve within a few seconds.
func listenIP(host string) (netip.Addr, bool) {
	if host == "" {
		return netip.IPv6Unspecified(), true
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() {
			return a, true
		}
	}
	return addrs[0], true
}

// portBeside is a port to suggest instead of n: the one above it (below
// it at the top of the range).
func portBeside(n int) int {
	if n >= 65535 {
		return n - 1
	}
	return n + 1
}
