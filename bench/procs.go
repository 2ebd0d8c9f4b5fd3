package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a server process of the benchmark (chatd, the relay, the fake
// upstream), its output going to a log file.
type proc struct {
	name  string
	cmd   *exec.Cmd
	log   *os.File
	addrs map[string]string // what the patterns captured
	done  chan error
}

// startProc starts bin and waits until every pattern (a regexp with one
// group, such as an address in a "listening" line) matched a line of its
// output.
func startProc(ctx context.Context, name, bin string, args, env []string, logDir string, patterns map[string]*regexp.Regexp) (*proc, error) {
	logf, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logf, addrs: map[string]string{}, done: make(chan error, 1)}
	found := make(chan struct{})
	go p.scan(pr, patterns, found)
	go func() { err := cmd.Wait(); pw.Close(); p.done <- err }()
	select {
	case <-found:
		return p, nil
	case err := <-p.done:
		p.done <- err
		return nil, fmt.Errorf("%s exited before it listened (%v); see %s", name, err, logf.Name())
	case <-time.After(time.Minute):
	case <-ctx.Done():
	}
	p.stop()
	return nil, fmt.Errorf("%s did not start; see %s", name, logf.Name())
}

// scan copies the output to the log and closes found once every pattern matched.
func (p *proc) scan(r io.Reader, patterns map[string]*regexp.Regexp, found chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	closed := false
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(p.log, line)
		if closed {
			continue
		}
		for key, re := range patterns {
			if m := re.FindStringSubmatch(line); m != nil {
				p.addrs[key] = m[1]
			}
		}
		if len(p.addrs) == len(patterns) {
			closed = true
			close(found)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// stop sends SIGTERM, waits up to 20 seconds, then kills the process group.
func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	p.log.Close()
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// cpuSeconds is the user plus system CPU time pid used so far, from /proc;
// a process that is gone, or a file that does not read as expected, is an
// error (it read as 0 before, which a difference then took as work).
func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU time of process %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces; fields after ')' are fixed.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	var fields []string
	if i >= 0 && i+2 <= len(s) {
		fields = strings.Fields(s[i+2:])
	}
	if len(fields) < 13 {
		return 0, fmt.Errorf("CPU time of process %d: unexpected /proc/%d/stat %.80q", pid, pid, s)
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("CPU time of process %d: %w", pid, err)
	}
	return (utime + stime) / clockTicks, nil
}

// rssBytes is the resident set size of pid, from /proc/<pid>/status.
func rssBytes(pid int) (int64, error) {
	kib, err := statusKiB(pid, "VmRSS:")
	return kib << 10, err
}

// statusKiB is the field key (such as "VmRSS:") of /proc/<pid>/status; a
// missing or empty one is an error.
func statusKiB(pid int, key string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("memory of process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil && n <= 0 {
				err = errors.New("not positive")
			}
			if err != nil {
				return 0, fmt.Errorf("memory of process %d: %s %q: %w", pid, key, rest, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("memory of process %d: no %s in /proc/%d/status", pid, key, pid)
}

// loadAvg is the 1-minute load average.
func loadAvg() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// raiseFileLimit raises the soft limit of open files to the hard limit;
// the child processes inherit it.
func raiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	return l.Cur, nil
}
