package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var pprofClient = &http.Client{Timeout: 2 * time.Minute}

func pprofGet(ctx context.Context, addr, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/"+path, nil)
	if err != nil {
		return nil, err
	}
	res, err := pprofClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("pprof %s: %w", path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("pprof %s: status %d", path, res.StatusCode)
	}
	return data, err
}

// memStats are the fields of runtime.MemStats the benchmark reports.
type memStats struct {
	HeapInuse  int64
	StackInuse int64
	Sys        int64
	NumGC      int64
	Mallocs    int64 // cumulative count of heap objects allocated
	TotalAlloc int64 // cumulative bytes allocated
}

var memStatRE = regexp.MustCompile(`(?m)^# (HeapInuse|Stack|Sys|NumGC|Mallocs|TotalAlloc) = (\d+)`)

// readMemStats runs a garbage collection in the process (heap?gc=1) and
// returns its MemStats, which the debug=1 heap profile ends with.
func readMemStats(ctx context.Context, addr string) (memStats, error) {
	return memStatsOf(ctx, addr, "heap?gc=1&debug=1")
}

// allocStats returns the MemStats without a collection first (only the
// cumulative counters are meaningful then).
func allocStats(ctx context.Context, addr string) (memStats, error) {
	return memStatsOf(ctx, addr, "heap?debug=1")
}

func memStatsOf(ctx context.Context, addr, path string) (memStats, error) {
	data, err := pprofGet(ctx, addr, path)
	if err != nil {
		return memStats{}, err
	}
	var m memStats
	for _, sm := range memStatRE.FindAllStringSubmatch(string(data), -1) {
		n, _ := strconv.ParseInt(sm[2], 10, 64)
		switch sm[1] {
		case "HeapInuse":
			m.HeapInuse = n
		case "Stack":
			m.StackInuse = n
		case "Sys":
			m.Sys = n
		case "NumGC":
			m.NumGC = n
		case "Mallocs":
			m.Mallocs = n
		case "TotalAlloc":
			m.TotalAlloc = n
		}
	}
	if m.HeapInuse == 0 {
		return m, fmt.Errorf("pprof heap: no MemStats in the answer")
	}
	return m, nil
}

// goroutines is the process's number of goroutines.
func goroutines(ctx context.Context, addr string) (int, error) {
	data, err := pprofGet(ctx, addr, "goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(data), "\n")
	n, err := strconv.Atoi(strings.TrimPrefix(first, "goroutine profile: total "))
	if err != nil {
		return 0, fmt.Errorf("pprof goroutine: unexpected first line %q", first)
	}
	return n, nil
}

// saveProfile writes the profile at path (such as "profile?seconds=10") to file.
func saveProfile(ctx context.Context, addr, path, file string) error {
	data, err := pprofGet(ctx, addr, path)
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}

// pprofTop summarizes a profile with go tool pprof -top.
func pprofTop(ctx context.Context, bin, profile string, n int, extra ...string) (string, error) {
	args := append([]string{"tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", n)}, extra...)
	args = append(args, bin, profile)
	out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w: %s", err, out)
	}
	return string(out), nil
}
