package natsbus

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"chatd/hub"
)

// The leases are judged by the Created time of their entries, which the
// NATS server leading the leases stream stamps with its own clock. When
// the leadership moves (a NATS node restarted, as in every rolling
// restart) to a server whose clock differs by D, that time steps by D:
// forward by more than the TTL less the renewal interval, every instance
// that had not renewed since looks dead to one that has (its answers
// taken over and interrupted, its connection counts dropped); backward,
// an instance renewing under the new leader looks older by D to one whose
// newest lease the old leader stamped. Every such step is found here,
// and judging pauses until this instance has renewed for a full TTL by
// the new clock (as after a failed renewal), by which time every live
// instance has renewed under it too:
//
//   - forward or backward by this instance's own renewals: the leader
//     stamps each between the moment it was sent and the moment its
//     answer came back, by this host's monotonic clock, so the stream's
//     time between two renewals must lie between those bounds;
//   - backward by the stream's order, whoever wrote the entry: one
//     leader's times never go back from one entry to the next.
//
// A step is warned of once for each pause it causes, and counted
// (LeaseClockSteps). The NATS servers' clocks must agree well within the
// TTL less the renewal interval (NTP); docs/scale.md, "Clocks".

// maxStepTolerance is the most the leases stream's clock may disagree
// with this host's before it counts as stepped.
const maxStepTolerance = 2 * time.Second

// keptRenewals is how many of its latest renewals this instance keeps,
// for the watcher to find the one a lease delivered came from.
const keptRenewals = 8

// ownRenewal is one renewal of this instance's lease.
type ownRenewal struct {
	stamp    time.Time // the lease's Renewed: tells the renewals apart
	sent     time.Time // this host's clock before the write was sent
	acked    time.Time // this host's clock once it was answered
	answered bool      // acked and failed are set
	failed   bool      // the write failed (it may have landed all the same)
	created  time.Time // the stream's time of the entry (zero until delivered)
	// hostSent and hostAcked are sent and acked by the host clock the
	// limits read (leaseView.host), for natsNow.
	hostSent, hostAcked time.Time
}

// streamPoint is an entry of the leases stream: its revision and time.
type streamPoint struct {
	rev     uint64
	created time.Time
}

// stepTolerance is how far the stream's clock may disagree with this
// host's over between: 2 s, or a quarter of the TTL when less (a forward
// step of the TTL less the renewal interval, at least half the TTL, does
// harm), and a thousandth of between for the clocks' rates.
func (v *leaseView) stepTolerance(between time.Duration) time.Duration {
	return min(maxStepTolerance, v.ttl/4) + between/1000
}

// sending records a renewal about to be written, its lease carrying
// stamp; renewed records its outcome, and the watcher its entry.
func (v *leaseView) sending(stamp time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.renewals = append(v.renewals, &ownRenewal{stamp: stamp, sent: v.clock(), hostSent: v.host()})
	if n := len(v.renewals); n > keptRenewals {
		v.renewals = slices.Delete(v.renewals, 0, n-keptRenewals)
	}
}

// renewal is the renewal kept whose lease carries stamp, or nil; v.mu is
// held.
func (v *leaseView) renewal(stamp time.Time) *ownRenewal {
	if stamp.IsZero() {
		return nil
	}
	for _, r := range slices.Backward(v.renewals) {
		if r.stamp.Equal(stamp) {
			return r
		}
	}
	return nil
}

// answered records the answer to the renewal carrying stamp and, once
// its entry was delivered too, judges it (landed). It returns a step to
// warn of; v.mu is held.
func (v *leaseView) answered(stamp time.Time, failed bool) time.Duration {
	r := v.renewal(stamp)
	if r == nil || r.answered {
		return 0
	}
	r.answered, r.acked, r.failed, r.hostAcked = true, v.clock(), failed, v.host()
	if r.created.IsZero() {
		return 0
	}
	return v.landed(r)
}

// ownLease records this instance's lease delivered with time created:
// one of the renewals kept is judged once answered too (landed), until
// then the view's clock waits for it; any other (written by an earlier
// process with this id, or a renewal no longer kept) moves the view's
// clock as it comes. It returns a step to warn of; v.mu is held.
func (v *leaseView) ownLease(stamp, created time.Time) time.Duration {
	r := v.renewal(stamp)
	switch {
	case r == nil:
		v.advance(created)
	case !r.created.IsZero(): // delivered again, by a new watcher
	default:
		r.created = created
		if r.answered {
			return v.landed(r)
		}
	}
	return 0
}

// landed judges renewal r, answered and delivered: its time against the
// previous one's and this host's clock. A renewal that stepped restarts
// the streak there (judged again after a full TTL by the new clock); one
// that did not moves the view's clock on, and ends a pause once judging
// resumes. A failed renewal moves the clock only (the failure paused
// judging already). It returns a step to warn of; v.mu is held.
func (v *leaseView) landed(r *ownRenewal) time.Duration {
	if r.failed {
		v.advance(r.created)
		return 0
	}
	v.measureNATS(r)
	ref := v.ref
	v.ref = r
	if ref != nil {
		if step := clockStep(ref, r, v.stepTolerance); step != 0 {
			v.seenAgain(r.created)
			v.ownNow, v.streakStart = r.created, r.created
			return v.stepFound(step)
		}
	}
	v.advance(r.created)
	if v.stepping && v.judges() {
		v.stepping = false
	}
	return 0
}

// clockStep is how far the stream's time stepped between renewals a and
// b (a first) beyond what this host's clock allows, given tolerance over
// the time between them: 0 when it did not.
func clockStep(a, b *ownRenewal, tolerance func(between time.Duration) time.Duration) time.Duration {
	lo, hi := b.sent.Sub(a.acked), b.acked.Sub(a.sent)
	elapsed := b.created.Sub(a.created)
	tol := tolerance(hi)
	switch {
	case elapsed > hi+tol:
		return elapsed - hi
	case elapsed < lo-tol:
		return elapsed - lo
	}
	return 0
}

// inOrder checks a lease entry, of any instance, against the newest
// delivered in this watcher's pass: a later revision with an earlier
// time means the stream's clock stepped back, and judging pauses until
// this instance has renewed for a full TTL again. It returns a step to
// warn of; v.mu is held.
func (v *leaseView) inOrder(rev uint64, created time.Time) time.Duration {
	last := v.newest
	if rev <= last.rev {
		return 0
	}
	v.newest = streamPoint{rev: rev, created: created}
	if back := created.Sub(last.created); last.rev != 0 && back < -v.stepTolerance(0) {
		v.streakStart = time.Time{}
		return v.stepFound(back)
	}
	return 0
}

// stepFound counts a step and returns it to warn of, unless judging is
// paused by an earlier one still; v.mu is held.
func (v *leaseView) stepFound(step time.Duration) time.Duration {
	if v.stepping {
		return 0
	}
	v.stepping = true
	v.steps++
	return step
}

// warnStep warns of a step of the leases stream's clock (0: none).
func (v *leaseView) warnStep(step time.Duration) {
	if step == 0 {
		return
	}
	v.log.Warn("the leases stream's clock stepped: the NATS servers' clocks disagree (its leader moved to a server whose clock is off?); "+
		"no instance is judged dead until this one has renewed its lease for a full TTL by the new clock. Synchronise the NATS servers' clocks (NTP)",
		slog.Duration("step", step.Round(time.Millisecond)))
}

// clockSteps is how many times the leases stream's clock was found
// stepped (each pause of judging counts once).
func (v *leaseView) clockSteps() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return int(v.steps)
}

// natsNow is this instance's estimate of the NATS servers' time: its
// host clock moved by what the leases stream's clock was ahead of it at
// its renewals (measureNATS), so within a round trip of it whatever the
// host's clock says; false before its first renewal landed (Health
// fails until then). The
// cluster-wide token buckets and windows (Limits, Windows) are judged by
// it: by the hosts' clocks, the instance behind set a bucket's last
// refill back to its own time, and the next take on the instance ahead
// refilled the whole gap, so with clocks apart by more than a bucket's
// key lives (a minute) or a window lasts, the limits were the
// instance's own. The NATS servers' clocks agree (docs/scale.md,
// "Clocks").
func (v *leaseView) natsNow() (time.Time, bool) {
	v.mu.Lock()
	off, ok := v.natsOffset, v.natsKnown
	v.mu.Unlock()
	return v.host().Add(off), ok
}

// measureNATS moves the offset natsNow adds to the host clock by what
// renewal r, landed, says of it: the leader stamped it between the
// moment it was sent and the moment its answer came, so the offset is at
// least created less the latter (lo) and at most created less the former
// (hi). It takes the greatest lo seen, so it never goes back (else the
// estimate went back and forth by up to a round trip at each renewal,
// and a window's wait said by one take could end before the next one's
// time reached it), unless it is past hi (a NATS clock stepped back, or
// the host's ran faster): then lo; v.mu is held.
func (v *leaseView) measureNATS(r *ownRenewal) {
	lo, hi := r.created.Sub(r.hostAcked), r.created.Sub(r.hostSent)
	if !v.natsKnown || v.natsOffset > hi {
		v.natsOffset = lo
	}
	v.natsOffset, v.natsKnown = max(v.natsOffset, lo), true
}

// errNoNATSTime refuses a cluster-wide limit before this instance knows
// the NATS servers' time (natsNow): the instance's own limit holds.
var errNoNATSTime = fmt.Errorf("natsbus: %w: the NATS servers' time is not known yet (no lease renewal landed)", hub.ErrBusUnavailable)
