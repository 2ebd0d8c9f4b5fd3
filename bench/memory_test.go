package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/bench/load"
)

// fakeMemServer is a server's pprof endpoint whose resident memory grows
// the first time it answers a heap dump and a goroutine dump (buffers a Go
// process keeps), as chatd's and the relay's did by 1.6 to 2 MiB; its
// connections cost nothing.
type fakeMemServer struct {
	mu              sync.Mutex
	rss             int64
	heaped, counted bool
}

func (f *fakeMemServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/debug/pprof/heap":
		if !f.heaped {
			f.heaped, f.rss = true, f.rss+1280<<10
		}
		fmt.Fprint(w, "heap profile: ...\n# HeapInuse = 4194304\n# Stack = 524288 / 524288\n# Mallocs = 100\n")
	case "/debug/pprof/goroutine":
		if !f.counted {
			f.counted, f.rss = true, f.rss+768<<10
		}
		fmt.Fprint(w, "goroutine profile: total 7\n")
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeMemServer) resident() (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rss, nil
}

// TestIdleBaselineAfterHarnessReads: connections that cost nothing measure
// 0 bytes of resident memory each; the baseline was read before the
// harness's own first memory readings, whose growth was charged to the
// connections (2 MiB over N).
func TestIdleBaselineAfterHarnessReads(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			f := &fakeMemServer{rss: 10 << 20}
			srv := httptest.NewServer(f)
			defer srv.Close()
			p := idleProbe{addr: strings.TrimPrefix(srv.URL, "http://"), rss: f.resident, poll: time.Millisecond}
			open := func(context.Context) (func() (int, error), error) {
				return func() (int, error) { return 0, nil }, nil
			}
			s, err := measureIdle(ctx, p, n, open, nil)
			if err != nil {
				t.Fatal(err)
			}
			if s.rss != 0 || s.heapStack != 0 || s.goroutines != 0 || s.rssOpen != 12<<20 {
				t.Fatalf("%d connections that cost nothing: %+v", n, s)
			}
		})
	}
}

// TestRSSSlopes: the slope between the fewest and the most connections,
// per server, from the medians of the RSS with them open.
func TestRSSSlopes(t *testing.T) {
	t.Parallel()
	at := func(vs ...int64) []idleSample {
		var ss []idleSample
		for _, v := range vs {
			ss = append(ss, idleSample{rssOpen: v})
		}
		return ss
	}
	got := map[string]map[int][]idleSample{
		load.TargetRelay: {1000: at(20<<20, 21<<20, 30<<20), 5000: at(40<<20, 41<<20, 99<<20)},
		load.TargetChatd: {1000: at(30 << 20), 5000: at(70 << 20)},
		chatdSSE:         {1000: at(30 << 20), 5000: at(110 << 20)},
	}
	want := "RSS per connection between 1000 and 5000 connections (the slope, KiB): relay 5.1, chatd 10.2, chatd SSE 20.5.\n"
	if s := rssSlopes(got, []int{1000, 5000}); s != want {
		t.Errorf("rssSlopes = %q, want %q", s, want)
	}
	if s := rssSlopes(got, []int{1000}); s != "" {
		t.Errorf("one level: %q", s)
	}
}
