package main

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// develVersion is the version of a binary that says none: built outside
// a git clone, in a linked worktree (golang/go#58218), or with
// -buildvcs=false.
const develVersion = "(devel)"

// buildInfo is what a chatd binary says of its build: the version go
// build gave the main module and, when it ran in a git clone, the commit.
type buildInfo struct {
	Version   string // v0.0.0-<time>-<commit>, with +dirty when modified; develVersion when unknown
	Revision  string // vcs.revision: the commit's full hash, "" when not stamped
	Time      string // vcs.time: the commit's time (RFC 3339), "" when not stamped
	Modified  string // vcs.modified: "true" when the tree had changes, "" when not stamped
	GoVersion string // the Go toolchain that built it, go1.x.y
}

// stampedVersion and stampedRevision are set by the Makefile's build
// (-ldflags -X, from git describe and git rev-parse), for the builds go
// build stamps no commit into: in a linked worktree, or with
// -buildvcs=false in GOFLAGS.
var stampedVersion, stampedRevision string

// currentBuild is this binary's buildInfo.
func currentBuild() buildInfo {
	return buildInfoOf(debug.ReadBuildInfo()).orStamped(stampedVersion, stampedRevision)
}

// orStamped is b with the version and revision the build stamped with
// -ldflags where go build gave none.
func (b buildInfo) orStamped(version, revision string) buildInfo {
	if b.Version == develVersion && version != "" {
		b.Version = version
	}
	if b.Revision == "" && revision != "" {
		b.Revision = revision
	}
	return b
}

// buildInfoOf reads a buildInfo from what debug.ReadBuildInfo returned.
func buildInfoOf(bi *debug.BuildInfo, ok bool) buildInfo {
	if !ok || bi == nil {
		return buildInfo{Version: develVersion}
	}
	b := buildInfo{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if b.Version == "" {
		b.Version = develVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value
		}
	}
	return b
}

// String is what chatd -version prints: "chatd <version>", then one
// "key: value" line for each of revision, time, modified and go that is
// known.
func (b buildInfo) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "chatd %s\n", b.Version)
	for _, kv := range [][2]string{{"revision", b.Revision}, {"time", b.Time}, {"modified", b.Modified}, {"go", b.GoVersion}} {
		if kv[1] != "" {
			fmt.Fprintf(&sb, "%s: %s\n", kv[0], kv[1])
		}
	}
	return sb.String()
}

// attrs are the start-up log line's version and revision.
func (b buildInfo) attrs() []any {
	return []any{slog.String("version", b.Version), slog.String("revision", b.Revision)}
}

// registerBuildInfo exports b as the gauge chatd_build_info, 1 with the
// labels version, revision and goversion, into reg. A gauge already
// registered there for the same build (another run in this process, as in
// tests) is kept.
func registerBuildInfo(reg prometheus.Registerer, b buildInfo) error {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "chatd_build_info",
		Help: "Always 1; its labels say which chatd runs: version (with +dirty when built from a modified tree), " +
			"revision (the git commit, empty when not stamped) and goversion.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion},
	})
	g.Set(1)
	err := reg.Register(g)
	if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("register chatd_build_info: %w", err)
	}
	return nil
}
