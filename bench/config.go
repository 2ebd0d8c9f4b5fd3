package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// config holds every scenario's parameters; fullConfig and smokeConfig are
// the two presets, and flags override parts of them.
type config struct {
	rounds   int           // interleaved rounds of every comparison
	coalesce time.Duration // chatd's CHATD_COALESCE_INTERVAL (its default)

	latencyLevels  []int // concurrent streams
	latencyTokens  int
	latencyDelay   time.Duration
	latencySamples int // at least this many answers per stream level and run

	capacityLevels []int // the ramp
	capacityTokens int
	capacityDelay  time.Duration
	capacitySpread time.Duration
	capacityLimit  float64 // ms of p99 lateness that ends the ramp

	cpuStreams int // CPU per token, chatd against the relay, at the capacity scenario's rate
	cpuTokens  int

	burstStreams int // N clients x tokens at a rate, all at once
	burstTokens  int
	burstDelay   time.Duration

	memoryLevels []int
	memoryRounds int
	memoryUsers  int

	writeTokens []int
	writePaced  time.Duration // a second series spreads every answer over this long

	fanTabs   []int
	fanUsers  int
	fanTokens int
	fanDelay  time.Duration
	// fanStallPairs is how many interleaved pairs of runs (at least
	// rounds) the stalled-tab comparison takes: its p99 of about 1.5 ms
	// moves by up to a third from run to run, far more than the 10% it
	// judges, so its median needs more pairs than the other comparisons.
	fanStallPairs int

	busLevels   []int // concurrent streams, each with a sender and a follower tab
	busTokens   int
	busDelay    time.Duration
	busSpread   time.Duration
	busMongoURI string // a real MongoDB for the bus scenario; empty: FerretDB in cmd/devstack
	busProfile  bool   // save the cluster instances' CPU profiles (first round of each cluster run)

	growthSQLite   growthSize    // the data-growth scenario on the embedded store
	growthFerret   growthSize    // and on the MongoDB store over FerretDB (much smaller: FerretDB scans)
	growthDir      string        // keep the filled SQLite database here and reuse it; empty: a fresh one each run
	growthNoFerret bool          // skip the FerretDB half of the growth scenario
	growthQuiet    time.Duration // sqlite.Options.IndexQuiet of the growth scenario's store (0: its default)
}

func fullConfig() config {
	return config{
		rounds: 5, coalesce: 25 * time.Millisecond,
		latencyLevels: []int{1, 10, 50, 200}, latencyTokens: 25, latencyDelay: 20 * time.Millisecond, latencySamples: 12,
		capacityLevels: []int{200, 400, 800, 1200, 1600}, capacityTokens: 500,
		capacityDelay: 20 * time.Millisecond, capacitySpread: 2 * time.Second, capacityLimit: 50,
		cpuStreams: 200, cpuTokens: 500,
		burstStreams: 250, burstTokens: 500, burstDelay: 10 * time.Millisecond,
		memoryLevels: []int{1000, 5000}, memoryRounds: 3, memoryUsers: 1000,
		writeTokens: []int{10, 1000, 10000}, writePaced: 1500 * time.Millisecond,
		fanTabs: []int{1, 2, 4, 8}, fanUsers: 20, fanTokens: 200, fanDelay: 10 * time.Millisecond, fanStallPairs: 9,
		busLevels: []int{50, 200}, busTokens: 200, busDelay: 20 * time.Millisecond, busSpread: 2 * time.Second,
		growthSQLite: growthSize{users: 500, conversations: 50_000, messages: 1_000_000, samples: 2000},
		growthFerret: growthSize{users: 25, conversations: 250, messages: 5000, samples: 200},
	}
}

// smokeConfig exercises every scenario with a few connections for a few
// seconds: it keeps the harness working, it measures nothing worth reading.
func smokeConfig() config {
	return config{
		rounds: 1, coalesce: 25 * time.Millisecond,
		latencyLevels: []int{1, 3}, latencyTokens: 10, latencyDelay: 10 * time.Millisecond, latencySamples: 2,
		capacityLevels: []int{4}, capacityTokens: 20, capacityDelay: 10 * time.Millisecond,
		capacitySpread: 100 * time.Millisecond, capacityLimit: 50,
		cpuStreams: 3, cpuTokens: 10,
		burstStreams: 3, burstTokens: 20, burstDelay: 5 * time.Millisecond,
		memoryLevels: []int{20}, memoryRounds: 1, memoryUsers: 5,
		writeTokens: []int{10, 200}, writePaced: 200 * time.Millisecond,
		fanTabs: []int{1, 2}, fanUsers: 2, fanTokens: 20, fanDelay: 5 * time.Millisecond,
		busLevels: []int{3}, busTokens: 20, busDelay: 10 * time.Millisecond, busSpread: 100 * time.Millisecond,
		growthSQLite: growthSize{users: 5, conversations: 50, messages: 500, samples: 20},
		growthFerret: growthSize{users: 2, conversations: 4, messages: 40, samples: 5},
	}
}

// intList is a flag holding a comma-separated list of numbers.
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	*l = nil
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a list of positive numbers", v)
		}
		*l = append(*l, n)
	}
	return nil
}
