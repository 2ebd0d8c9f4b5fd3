package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// header describes the run: when, on what machine, with which command.
func header(ctx context.Context, o options, args []string, start time.Time, load0 float64) string {
	commit, _ := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	dirty, _ := exec.CommandContext(ctx, "git", "status", "--porcelain", "--", "hub", "transport", "persistence", "cmd", "bench", "llm").Output()
	state := ""
	if len(strings.TrimSpace(string(dirty))) > 0 {
		state = " (with uncommitted changes)"
	}
	kind := "full run"
	if o.smoke {
		kind = "smoke run: too short to mean anything, it only checks the harness"
	}
	return fmt.Sprintf(`# chatd benchmarks (%s)

- date: %s, %s
- machine: %s, %d logical CPUs, %s RAM, %s
- Go %s, commit %s%s
- load average (1 min): %.2f at the start, %.2f at the end; the machine is shared
- command: go run ./bench %s%s`,
		kind, start.UTC().Format("2006-01-02 15:04 MST"), time.Since(start).Round(time.Second),
		cpuModel(), runtime.NumCPU(), memTotal(), kernel(),
		strings.TrimPrefix(runtime.Version(), "go"), strings.TrimSpace(string(commit)), state,
		load0, loadAvg(), strings.Join(args, " "), chatdNote(o))
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	data, _ := os.ReadFile("/proc/meminfo")
	var kb int64
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			fmt.Sscan(strings.TrimSpace(rest), &kb)
		}
	}
	return fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
}

func kernel() string {
	data, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return "Linux " + strings.TrimSpace(string(data))
}

func chatdNote(o options) string {
	if o.chatdBin == "" {
		return ""
	}
	return "\n- chatd: the prebuilt binary " + o.chatdBin + " (not built from this tree)"
}
