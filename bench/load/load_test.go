package load

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"chatd/bench/relay"
	"chatd/llm/fakeai"
)

func TestPercentiles(t *testing.T) {
	t.Parallel()
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(100-i) * 1e6
	}
	cases := []struct {
		samples       []int64
		p50, p99, max float64
	}{
		{nil, 0, 0, 0},
		{[]int64{5e6}, 5, 5, 5},
		{[]int64{4e6, 1e6, 3e6, 2e6}, 2, 4, 4},
		{hundred, 50, 99, 100},
	}
	for _, c := range cases {
		s := Summarize(c.samples)
		if s.P50 != c.p50 || s.P99 != c.p99 || s.Max != c.max || s.N != len(c.samples) {
			t.Errorf("Summarize(%v) = %+v, want p50 %v p99 %v max %v", c.samples, s, c.p50, c.p99, c.max)
		}
	}
}

// TestStamps: the load generator's stamp parser agrees with llm/fakeai's.
func TestStamps(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"", "no stamps", "[ts:12] héllo ", "[ts:1] a [ts:22] b [ts:333] 中文 ",
		"[ts:] broken [ts:x] also [ts:5]no space [ts:7] ok ", "tail [ts:9",
	} {
		if got, want := appendStamps(nil, text), fakeai.ParseStamps(text); !slices.Equal(got, want) {
			t.Errorf("appendStamps(%q) = %v, want %v", text, got, want)
		}
		if got, want := stripStamps(text), fakeai.StripStamps(text); got != want {
			t.Errorf("stripStamps(%q) = %q, want %q", text, got, want)
		}
	}
}

func wsURL(httpURL string) string { return "ws" + strings.TrimPrefix(httpURL, "http") + "/ws" }

// TestRunBaselines drives the two baselines for real: the fake upstream
// read directly and the relay in front of it.
func TestRunBaselines(t *testing.T) {
	t.Parallel()
	fake := fakeai.Start(t, fakeai.Options{})
	rel := httptest.NewServer(relay.New(relay.Options{Upstream: fake.URL}))
	t.Cleanup(rel.Close)
	cases := []struct{ target, url string }{
		{TargetUpstream, fake.URL},
		{TargetRelay, wsURL(rel.URL)},
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			starts, ends := 0, 0
			res, err := Run(ctx, Spec{Target: c.target, URL: c.url, Streams: 3, Answers: 2, Tokens: 15,
				Delay: 2 * time.Millisecond, OnStart: func() { starts++ }, OnEnd: func() { ends++ }})
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK() || res.Answers != 6 || res.Tokens != 90 || res.ExpectedTokens != 90 || res.TTFT.N != 6 || res.Lateness.N != 90 {
				t.Fatalf("result %+v", res)
			}
			if starts != 1 || ends != 1 {
				t.Fatalf("OnStart %d, OnEnd %d times", starts, ends)
			}
			if res.Lateness.Max <= 0 || res.Lateness.Max > 10_000 || res.TTFT.P50 <= 0 {
				t.Fatalf("implausible timings %+v %+v", res.TTFT, res.Lateness)
			}
			n, from := 0, int64(0)
			for _, w := range res.LatenessByTime {
				if w.FromMs < from || w.ToMs <= w.FromMs || w.N == 0 {
					t.Fatalf("windows out of order or empty: %+v", res.LatenessByTime)
				}
				n, from = n+w.N, w.ToMs
			}
			if n != res.Lateness.N {
				t.Fatalf("the windows hold %d tokens, the run %d", n, res.Lateness.N)
			}
		})
	}
}

// TestRunDetectsBrokenAnswers: an answer cut short counts as an error, on
// both baselines.
func TestRunDetectsBrokenAnswers(t *testing.T) {
	t.Parallel()
	fake := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Fault: fakeai.FaultEndMid, FaultAfter: 3}})
	rel := httptest.NewServer(relay.New(relay.Options{Upstream: fake.URL}))
	t.Cleanup(rel.Close)
	for _, c := range []struct{ target, url string }{{TargetUpstream, fake.URL}, {TargetRelay, wsURL(rel.URL)}} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := Run(ctx, Spec{Target: c.target, URL: c.url, Streams: 2, Tokens: 10})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if res.OK() || res.Errors != 2 || res.Answers != 0 {
			t.Fatalf("%s: answers cut short passed: %+v", c.target, res)
		}
	}
}

// TestResultOK: a run is whole when every answer arrived, nothing failed
// and every reading tab received every token; tokens that arrived without
// their stamps (no lateness samples: a p99 of 0) make it broken.
func TestResultOK(t *testing.T) {
	t.Parallel()
	whole := Result{Answers: 4, Expected: 4, Tokens: 40, ExpectedTokens: 40}
	tests := []struct {
		name string
		edit func(*Result)
		ok   bool
	}{
		{"whole", func(*Result) {}, true},
		{"an answer missing", func(r *Result) { r.Answers-- }, false},
		{"an error", func(r *Result) { r.Errors++ }, false},
		{"a follower's sequence differs", func(r *Result) { r.Mismatched++ }, false},
		{"a token short", func(r *Result) { r.Tokens-- }, false},
		{"no tokens at all", func(r *Result) { r.Tokens = 0 }, false},
	}
	for _, tt := range tests {
		r := whole
		tt.edit(&r)
		if r.OK() != tt.ok {
			t.Errorf("%s: OK() = %v, want %v (%+v)", tt.name, r.OK(), tt.ok, r)
		}
	}
}

// TestReadingTabs: a stalled tab receives no tokens of its stream's.
func TestReadingTabs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		tabs  int
		stall bool
		want  int
	}{{1, false, 1}, {1, true, 1}, {4, false, 4}, {4, true, 3}} {
		s := Spec{Tabs: c.tabs, StallTab: c.stall}
		if got := s.readingTabs(); got != c.want {
			t.Errorf("%d tabs, stall %v: %d reading, want %d", c.tabs, c.stall, got, c.want)
		}
	}
}

func TestIdleRelay(t *testing.T) {
	t.Parallel()
	fake := fakeai.Start(t, fakeai.Options{})
	rel := httptest.NewServer(relay.New(relay.Options{Upstream: fake.URL}))
	t.Cleanup(rel.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ready := false
	dropped, err := Idle(ctx, IdleSpec{Target: TargetRelay, URL: wsURL(rel.URL), Conns: 20},
		func() { ready = true; cancel() })
	if err != nil || dropped != 0 || !ready {
		t.Fatalf("Idle: ready %v, %d dropped, %v", ready, dropped, err)
	}
}

// TestLatenessByTime: tokens fall in the window of their stamp after the
// first prompt (a stamp before it in the first); empty windows are left
// out; each window summarizes its own tokens.
func TestLatenessByTime(t *testing.T) {
	t.Parallel()
	const t0 = int64(5e9)
	ms := func(v int64) int64 { return t0 + v*1e6 }
	tests := []struct {
		name   string
		stamps []int64
		late   []int64 // ns
		want   []Window
	}{
		{name: "nothing", want: nil},
		{name: "first window, a stamp before the prompt included",
			stamps: []int64{t0 - 1e6, ms(50)}, late: []int64{1e6, 3e6},
			want: []Window{{FromMs: 0, ToMs: 100, Summary: Summary{N: 2}}}},
		{name: "edges", stamps: []int64{ms(99), ms(100), ms(999), ms(1000), ms(2500)}, late: []int64{1e6, 2e6, 3e6, 4e6, 5e6},
			want: []Window{{FromMs: 0, ToMs: 100, Summary: Summary{N: 1}}, {FromMs: 100, ToMs: 250, Summary: Summary{N: 1}},
				{FromMs: 500, ToMs: 1000, Summary: Summary{N: 1}}, {FromMs: 1000, ToMs: 2000, Summary: Summary{N: 1}},
				{FromMs: 2000, ToMs: 3000, Summary: Summary{N: 1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := latenessByTime(timings{stamps: tt.stamps, lateness: tt.late}, t0)
			if len(got) != len(tt.want) {
				t.Fatalf("windows %+v, want %+v", got, tt.want)
			}
			for i, w := range got {
				want := tt.want[i]
				if w.FromMs != want.FromMs || w.ToMs != want.ToMs || w.N != want.N {
					t.Fatalf("window %d = %d-%d ms with %d tokens, want %d-%d ms with %d", i, w.FromMs, w.ToMs, w.N, want.FromMs, want.ToMs, want.N)
				}
			}
		})
	}
	// Each window's summary is its own tokens'.
	got := latenessByTime(timings{stamps: []int64{ms(10), ms(20), ms(1500)}, lateness: []int64{2e6, 4e6, 9e6}}, t0)
	if len(got) != 2 || got[0].Max != 4 || got[1].Max != 9 || got[1].P50 != 9 {
		t.Fatalf("summaries %+v", got)
	}
}
