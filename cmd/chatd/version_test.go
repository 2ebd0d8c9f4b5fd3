package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestBuildInfoOf: the version and the commit come from the build
// information go build stamps; a binary without them says (devel).
func TestBuildInfoOf(t *testing.T) {
	t.Parallel()
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "chatd", Version: "v0.0.0-20261207071902-49f64b9264c7+dirty"},
		Settings: []debug.BuildSetting{{Key: "-tags", Value: "embedui"}, {Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "49f64b9264c7145abc7a40e0d441d52b299b4f37"},
			{Key: "vcs.time", Value: "2026-12-07T07:19:02Z"}, {Key: "vcs.modified", Value: "true"}}}
	cases := []struct {
		name   string
		bi     *debug.BuildInfo
		ok     bool
		want   buildInfo
		output string // what chatd -version prints
	}{{
		name: "none", bi: nil, ok: false,
		want: buildInfo{Version: "(devel)"}, output: "chatd (devel)\n",
	}, {
		name: "no version, no commit", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "chatd"}}, ok: true,
		want: buildInfo{Version: "(devel)", GoVersion: "go1.26.8"}, output: "chatd (devel)\ngo: go1.26.8\n",
	}, {
		name: "stamped", bi: stamped, ok: true,
		want: buildInfo{Version: "v0.0.0-20261207071902-49f64b9264c7+dirty", Revision: "49f64b9264c7145abc7a40e0d441d52b299b4f37",
			Time: "2026-12-07T07:19:02Z", Modified: "true", GoVersion: "go1.26.8"},
		output: "chatd v0.0.0-20261207071902-49f64b9264c7+dirty\nrevision: 49f64b9264c7145abc7a40e0d441d52b299b4f37\n" +
			"time: 2026-12-07T07:19:02Z\nmodified: true\ngo: go1.26.8\n",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := buildInfoOf(c.bi, c.ok)
			if got != c.want {
				t.Errorf("buildInfoOf = %+v; want %+v", got, c.want)
			}
			if got.String() != c.output {
				t.Errorf("output %q; want %q", got.String(), c.output)
			}
		})
	}
}

// TestBuildInfoStamped: the version and commit the Makefile stamps with
// -ldflags stand in for those go build did not record (a linked worktree,
// GOFLAGS=-buildvcs=false: make build's binary said (devel) there), and
// never replace those it did.
func TestBuildInfoStamped(t *testing.T) {
	t.Parallel()
	recorded := buildInfo{Version: "v0.0.0-20261207071902-49f64b9264c7", Revision: "49f64b9264c7145abc7a40e0d441d52b299b4f37", GoVersion: "go1.26.8"}
	cases := []struct {
		name              string
		b                 buildInfo
		version, revision string
		want              buildInfo
	}{
		{"nothing recorded", buildInfo{Version: develVersion, GoVersion: "go1.26.8"}, "e60ac06-dirty", "e60ac06aa",
			buildInfo{Version: "e60ac06-dirty", Revision: "e60ac06aa", GoVersion: "go1.26.8"}},
		{"nothing stamped", buildInfo{Version: develVersion}, "", "", buildInfo{Version: develVersion}},
		{"recorded", recorded, "e60ac06-dirty", "e60ac06aa", recorded},
	}
	for _, c := range cases {
		if got := c.b.orStamped(c.version, c.revision); got != c.want {
			t.Errorf("%s: %+v; want %+v", c.name, got, c.want)
		}
	}
}

// TestBuildInfoMetric: chatd_build_info is 1 with the build's version,
// revision and Go version as labels; registering it again for the same
// build (a second run in one process) is no error.
func TestBuildInfoMetric(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := buildInfo{Version: "v1.2.3", Revision: "49f64b9264c7145abc7a40e0d441d52b299b4f37", GoVersion: "go1.26.8"}
	for range 2 {
		if err := registerBuildInfo(reg, b); err != nil {
			t.Fatal(err)
		}
	}
	families, err := reg.Gather()
	if err != nil || len(families) != 1 || families[0].GetName() != "chatd_build_info" || len(families[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v (%v); want one chatd_build_info", families, err)
	}
	m := families[0].GetMetric()[0]
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	want := map[string]string{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion}
	if !maps.Equal(labels, want) || m.GetGauge().GetValue() != 1 {
		t.Errorf("chatd_build_info %v = %v; want %v = 1", labels, m.GetGauge().GetValue(), want)
	}
}

// TestVersionServed: a running chatd names its build on the start-up log
// line (version and revision) and in chatd_build_info on /metrics.
func TestVersionServed(t *testing.T) {
	t.Parallel()
	s := start(t, testEnv(t.TempDir()))
	b := currentBuild()
	res, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	series := fmt.Sprintf(`chatd_build_info{goversion=%q,revision=%q,version=%q} 1`, b.GoVersion, b.Revision, b.Version)
	found := false
	for sc := bufio.NewScanner(res.Body); sc.Scan(); {
		found = found || sc.Text() == series
	}
	if res.StatusCode != http.StatusOK || !found {
		t.Errorf("/metrics (%d) has no %s", res.StatusCode, series)
	}
	for line := range strings.SplitSeq(s.logs.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil || entry["msg"] != "starting chatd" {
			continue
		}
		if v, ok := entry["revision"]; entry["version"] != b.Version || !ok || v != b.Revision {
			t.Errorf("start-up line %v; want version %q and revision %q", entry, b.Version, b.Revision)
		}
		return
	}
	t.Errorf("no start-up line in\n%s", s.logs.String())
}
