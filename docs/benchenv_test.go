package docs

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

var envNameRe = regexp.MustCompile(`\b([A-Z][A-Z0-9_]*[A-Z0-9])=`)

// benchChatdEnv returns the names of the variables bench/env.go's
// restartChatd gives chatd: those of the []string literal the function
// builds.
func benchChatdEnv(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../bench/env.go")
	if err != nil {
		t.Fatal(err)
	}
	src := string(data)
	start := strings.Index(src, "func (e *env) restartChatd(")
	if start < 0 {
		t.Fatal("bench/env.go: no restartChatd")
	}
	body := src[start:]
	open := strings.Index(body, "[]string{")
	end := strings.Index(body[max(open, 0):], "\n\t}\n")
	if open < 0 || end < 0 {
		t.Fatal("bench/env.go: restartChatd builds no []string{...} environment")
	}
	var names []string
	for _, m := range envNameRe.FindAllStringSubmatch(body[open:open+end], -1) {
		names = append(names, m[1])
	}
	if len(names) < 5 {
		t.Fatalf("bench/env.go: read only %v from restartChatd", names)
	}
	return names
}

// documentedChatdEnv returns the variables of the command that starts chatd
// on its own in docs/benchmarks.md: the shell lines from the first that sets
// a CHATD_ variable to the one that runs ./cmd/chatd.
func documentedChatdEnv(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("benchmarks.md")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		if !in && strings.HasPrefix(line, "CHATD_") && strings.Contains(line, "=") {
			in = true
		}
		if !in {
			continue
		}
		for _, m := range envNameRe.FindAllStringSubmatch(line, -1) {
			names[m[1]] = true
		}
		if strings.Contains(line, "./cmd/chatd") {
			return names
		}
	}
	t.Fatal("benchmarks.md: no command that starts chatd with its environment")
	return nil
}

// TestBenchChatdEnvironment: the documented way to run chatd on its own for
// the load generator sets every variable the benchmark sets: without
// CHATD_TRUSTED_PROXIES and CHATD_REGISTRATIONS_PER_HOUR_IP the documented
// "loadgen register -n 50" was refused at the 11th sign-up (429).
func TestBenchChatdEnvironment(t *testing.T) {
	t.Parallel()
	documented := documentedChatdEnv(t)
	for _, name := range benchChatdEnv(t) {
		if !documented[name] {
			t.Errorf("docs/benchmarks.md: the command that runs chatd for loadgen lacks %s, which bench/env.go sets", name)
		}
	}
}
