package load

import (
	"context"
	"fmt"
	"sync"
	"time"

	"chatd/llm/fakeai"
)

// stream is one client of a run: it asks for its answers one after the
// other and keeps what it measured.
type stream interface {
	// run asks for every answer, recording into r.
	run(ctx context.Context, r *recorder)
	// finish ends the stream's connections once every stream ran and adds
	// what its connections measured to res and all.
	finish(res *Result, all *timings)
}

// Run performs spec and returns what it measured. It returns an error only
// when the run could not start (a bad spec, a server that refuses
// connections); failures during the run are counted in Result.Errors.
func Run(ctx context.Context, spec Spec) (Result, error) {
	spec.setDefaults()
	if spec.Streams <= 0 || spec.Tokens <= 0 {
		return Result{}, fmt.Errorf("load: need streams and tokens, got %d and %d", spec.Streams, spec.Tokens)
	}
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	streams, err := setup(ctx, &spec)
	if err != nil {
		return Result{}, err
	}
	r := &recorder{}
	if spec.OnStart != nil {
		spec.OnStart()
	}
	t0 := fakeai.MonotonicNanos()
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Go(func() {
			if !sleepUntil(ctx, t0+int64(spec.Spread)*int64(i)/int64(len(streams))) {
				return
			}
			s.run(ctx, r)
		})
	}
	wg.Wait()
	if spec.OnEnd != nil {
		spec.OnEnd()
	}
	res := Result{Target: spec.Target, Streams: spec.Streams, Tabs: spec.Tabs,
		Expected: spec.Streams * spec.Answers}
	res.ExpectedTokens = int64(res.Expected) * int64(spec.Tokens) * int64(spec.readingTabs())
	drainStalled(streams, &res)
	var all timings
	var follower, sender []int64
	for _, s := range streams {
		s.finish(&res, &all)
		if cs, ok := s.(*chatdStream); ok && len(cs.tabs) > 1 {
			follower = append(follower, cs.followerLateness()...)
			sender = append(sender, cs.tabs[0].times.lateness...)
		}
	}
	r.fill(&res, t0)
	res.LatenessByTime = latenessByTime(all, t0) // before Summarize sorts all.lateness
	res.Lateness = Summarize(all.lateness)
	res.FollowerLateness = Summarize(follower)
	res.SenderLateness = Summarize(sender)
	return res, nil
}

// stallDrain is the longest a stalled tab is given, once it reads again, to
// show what became of it.
const stallDrain = 5 * time.Second

// drainStalled lets every stalled tab read again, all at once, and counts
// what became of them.
func drainStalled(streams []stream, res *Result) {
	type staller interface {
		drainStalled(time.Duration) (stallOutcome, bool)
	}
	outcomes := make([]stallOutcome, len(streams))
	has := make([]bool, len(streams))
	var wg sync.WaitGroup
	for i, s := range streams {
		if st, ok := s.(staller); ok {
			wg.Go(func() { outcomes[i], has[i] = st.drainStalled(stallDrain) })
		}
	}
	wg.Wait()
	for i, o := range outcomes {
		if !has[i] {
			continue
		}
		res.StalledTabs++
		switch {
		case o.closed:
			res.StalledClosed++
			if res.StalledCodes == nil {
				res.StalledCodes = map[int]int{}
			}
			res.StalledCodes[o.code]++
		case o.caughtUp:
			res.StalledCaughtUp++
		}
	}
}

func setup(ctx context.Context, spec *Spec) ([]stream, error) {
	switch spec.Target {
	case TargetChatd:
		return setupChatd(ctx, spec)
	case TargetRelay:
		return setupRelay(ctx, spec)
	case TargetUpstream:
		return setupUpstream(ctx, spec)
	}
	return nil, fmt.Errorf("load: unknown target %q", spec.Target)
}

// recorder collects what the streams measure; it is safe for concurrent use.
type recorder struct {
	mu         sync.Mutex
	ttft       []int64
	answers    int
	mismatched int
	merged     int
	errors     int
	first      []string
	lastEnd    int64
}

func (r *recorder) firstToken(d int64) {
	r.mu.Lock()
	r.ttft = append(r.ttft, d)
	r.mu.Unlock()
}

// answered notes an answer that ended, well or not (why says what was wrong).
func (r *recorder) answered(stream int, why string) {
	now := fakeai.MonotonicNanos()
	r.mu.Lock()
	r.lastEnd = max(r.lastEnd, now)
	r.mu.Unlock()
	if why != "" {
		r.fail(fmt.Errorf("stream %d: %s", stream, why))
		return
	}
	r.mu.Lock()
	r.answers++
	r.mu.Unlock()
}

func (r *recorder) mismatch() {
	r.mu.Lock()
	r.mismatched++
	r.mu.Unlock()
}

// mergedByBus notes a follower tab on another instance whose answer was
// whole and exact but arrived in fewer, merged deltas (the owner's
// publisher merges the deltas that wait for a slow bus).
func (r *recorder) mergedByBus() {
	r.mu.Lock()
	r.merged++
	r.mu.Unlock()
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors++
	if len(r.first) < 5 {
		r.first = append(r.first, err.Error())
	}
}

func (r *recorder) fill(res *Result, t0 int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res.TTFT = Summarize(r.ttft)
	res.Answers, res.Mismatched, res.MergedByBus = r.answers, r.mismatched, r.merged
	res.Errors += r.errors
	res.FirstErrors = append(res.FirstErrors, r.first...)
	if r.lastEnd > t0 {
		res.Wall = float64(r.lastEnd-t0) / 1e9
	}
}

// sleepUntil waits until the MonotonicNanos clock reaches t, or ctx ends.
func sleepUntil(ctx context.Context, t int64) bool {
	d := time.Duration(t - fakeai.MonotonicNanos())
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// parallel calls fn(i) for every i in [0, n), at most workers at a time,
// and returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}
