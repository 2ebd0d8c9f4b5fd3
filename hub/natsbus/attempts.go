package natsbus

import (
	"sync"
	"time"
)

// attemptLogEvery is how often a connection attempt that keeps failing
// the same way is logged again.
const attemptLogEvery = 30 * time.Second

// attemptLog decides which failed connection attempts to NATS are logged:
// while the servers cannot be reached, or refuse this instance (a wrong
// password, a client certificate they do not accept), nats.go retries every
// few seconds at most and reports every failure. The first failure after a
// connection, a failure for another reason than the last one logged, and
// otherwise one per attemptLogEvery are logged, with the count of those
// passed over, so the reason is in the log at once and the log is not
// flooded through an outage.
type attemptLog struct {
	mu       sync.Mutex
	reason   string    // the error of the last attempt logged; "" once connected
	loggedAt time.Time // when it was logged
	skipped  int       // failures since, not logged
}

// failed records a failed attempt at now and reports whether to log it,
// with the number of failures passed over since the last one logged.
func (a *attemptLog) failed(err error, now time.Time) (skipped int, log bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if reason := err.Error(); reason != a.reason || now.Sub(a.loggedAt) >= attemptLogEvery {
		skipped = a.skipped
		a.reason, a.loggedAt, a.skipped = reason, now, 0
		return skipped, true
	}
	a.skipped++
	return 0, false
}

// connected starts afresh: the next failure is logged whatever it is.
func (a *attemptLog) connected() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reason, a.skipped = "", 0
}
