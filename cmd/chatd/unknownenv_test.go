package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// namesRead are the variables loadConfig reads, recorded.
func namesRead(t *testing.T) map[string]bool {
	t.Helper()
	read := map[string]bool{}
	if _, err := loadConfig(recordReads(envOf(nil), read)); err != nil {
		t.Fatal(err)
	}
	if !read["CHATD_ADDR"] || !read["CHATD_NATS_URL"] || !read["JWT_SECRET"] || !read["CHATD_INSTANCE_ID"] {
		t.Fatalf("the recorded names miss some: %v", read)
	}
	return read
}

// TestClosestName: the name a misspelt variable may have meant, or none.
// OPENAI_KEY, a word short of OPENAI_API_KEY, was warned about without a
// suggestion, where README promised the closest variable.
func TestClosestName(t *testing.T) {
	t.Parallel()
	read := namesRead(t)
	known := make([]string, 0, len(read))
	for name := range read {
		known = append(known, name)
	}
	slices.Sort(known)
	for _, tc := range []struct{ name, want string }{
		{"CHATD_REGISTRATIONS", "CHATD_REGISTRATION"}, // a letter more
		{"JWT_SECRETS", "JWT_SECRET"},
		{"CHATD_TRUSTED_PROXY", "CHATD_TRUSTED_PROXIES"}, // within a fifth of a long name
		{"CHATD_MAX_ANSWER", "CHATD_MAX_ANSWER_BYTES"},   // words more at the end
		{"OPENAI_KEY", "OPENAI_API_KEY"},                 // a word left out
		{"OPENAI_API_SECRET_KEY", "OPENAI_API_KEY"},      // a word added
		{"MONGODB_FOO", ""},                              // a word of its own
		{"CHATD_NO_SUCH_THING", ""},
		{"JWT_KEY", ""}, // no JWT_ name with KEY
	} {
		if got := closestName(tc.name, known); got != tc.want {
			t.Errorf("closestName(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestUnknownVariables(t *testing.T) {
	t.Parallel()
	read := namesRead(t)
	environ := []string{
		"CHATD_REGISTRATIONS=closed", "CHATD_TRUSTED_PROXY=127.0.0.1", "OPENAI_APIKEY=sk-x", "MONGODB_URL=mongodb://db",
		"CHATD_MAX_ANSWER=1MiB", "JWT_SECRETS=x", "CHATD_NO_SUCH_THING=1",
		"CHATD_REGISTRATION=open", "CHATD_BIN=/usr/local/bin/chatd", "CHATD_ENV_FILE=/etc/chatd/chatd.env",
		"CHATD_E2E_FRONTEND=standin", "CHATD_EMPTY=", "CHATD_BLANK= ", "HOME=/root", "PATH=/usr/bin", "chatd_addr=:1",
		"CHATD_REGISTRATIONS=closed",
	}
	want := []unknownVariable{
		{"CHATD_MAX_ANSWER", "CHATD_MAX_ANSWER_BYTES"},
		{"CHATD_NO_SUCH_THING", ""},
		{"CHATD_REGISTRATIONS", "CHATD_REGISTRATION"},
		{"CHATD_TRUSTED_PROXY", "CHATD_TRUSTED_PROXIES"},
		{"JWT_SECRETS", "JWT_SECRET"},
		{"MONGODB_URL", "MONGODB_URI"},
		{"OPENAI_APIKEY", "OPENAI_API_KEY"},
	}
	if got := unknownVariables(environ, read); !slices.Equal(got, want) {
		t.Fatalf("unknown variables:\n got %v\nwant %v", got, want)
	}
}

// TestUnknownVariablesWarned: a misspelt variable is said at start, with
// the name meant, as a JSON warning on a pipe and as a plain line at a
// terminal; chatd starts all the same. CHATD_REGISTRATIONS=closed left
// registration open without a word.
func TestUnknownVariablesWarned(t *testing.T) {
	t.Parallel()
	environ := func() []string { return []string{"CHATD_REGISTRATIONS=closed", "CHATD_BIN=/usr/local/bin/chatd"} }
	s := startWith(t, testEnv(t.TempDir()), hooks{environ: environ})
	var warned []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["variable"] != nil {
			warned = append(warned, line)
		}
	}
	if len(warned) != 1 || warned[0]["level"] != "WARN" || warned[0]["variable"] != "CHATD_REGISTRATIONS" ||
		warned[0]["closest"] != "CHATD_REGISTRATION" || !strings.Contains(warned[0]["msg"].(string), "did you mean CHATD_REGISTRATION?") {
		t.Fatalf("want one warning naming CHATD_REGISTRATIONS and CHATD_REGISTRATION, got %v\nlogs:\n%s", warned, s.logs)
	}

	// At CHATD_LOG_LEVEL=error too: nothing else would say it.
	quiet := startWith(t, testEnv(t.TempDir(), "CHATD_LOG_LEVEL", "error"), hooks{environ: environ})
	if !strings.Contains(quiet.logs.String(), `"variable":"CHATD_REGISTRATIONS"`) {
		t.Fatalf("at log level error, no warning naming CHATD_REGISTRATIONS:\n%s", quiet.logs)
	}

	// A refused configuration says it too: the misspelling may be why.
	var out bytes.Buffer
	err := runWith(context.Background(), envOf(map[string]string{"CHATD_NATS_USER": "chatd"}), &out,
		hooks{environ: func() []string { return []string{"CHATD_NATS_URLS=nats://n1:4222"} }})
	if err == nil || !strings.Contains(out.String(), `"closest":"CHATD_NATS_URL"`) {
		t.Fatalf("run: %v; want a warning naming CHATD_NATS_URL, got:\n%s", err, out.String())
	}

	var term bytes.Buffer
	warnUnknownVariables(&term, true, []unknownVariable{{"CHATD_TRUSTED_PROXY", "CHATD_TRUSTED_PROXIES"}, {"CHATD_X", ""}},
		slog.New(slog.NewJSONHandler(&term, nil)))
	want := "warning: CHATD_TRUSTED_PROXY is set, but chatd reads no such variable: it is ignored (did you mean CHATD_TRUSTED_PROXIES?)\n" +
		"warning: CHATD_X is set, but chatd reads no such variable: it is ignored\n"
	if term.String() != want {
		t.Fatalf("at a terminal:\n got %q\nwant %q", term.String(), want)
	}
}

// TestKitVariablesListed: every variable with chatd's prefixes that the
// deployment kit sets (the pm2 kit, the unit, the environment file, the
// deployment tests) is one chatd reads or one of kitVariables, so none of
// them is warned about as misspelt.
func TestKitVariablesListed(t *testing.T) {
	t.Parallel()
	read := namesRead(t)
	nameRE := regexp.MustCompile(`\b(?:CHATD|OPENAI|MONGODB|JWT)_[A-Z0-9_]*[A-Z0-9]\b`)
	streams := regexp.MustCompile(`^CHATD_(?:ANSWERS|EVENTS|LEASES|[A-Z]+_KV)$`) // NATS names, no variables
	var files []string
	for _, pattern := range []string{"../../deploy/ecosystem.config.js", "../../deploy/pm2-setup.sh",
		"../../deploy/chatd.service", "../../deploy/chatd.env.example", "../../deploy/e2e/*.go"} {
		more, err := filepath.Glob(pattern)
		if err != nil || len(more) == 0 {
			t.Fatalf("%s: %v", pattern, err)
		}
		files = append(files, more...)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range nameRE.FindAllString(string(data), -1) {
			if !read[name] && !slices.Contains(kitVariables, name) && !streams.MatchString(name) {
				t.Errorf("%s: %s is neither read by chatd nor one of kitVariables: chatd would warn that it is misspelt", f, name)
			}
		}
	}
}

// TestReadVariablesInREADME: every variable chatd reads has a row in one
// of README.md's tables (docs/variables_test.go checks the other way).
func TestReadVariablesInREADME(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first, _, _ := strings.Cut(line[1:], "|")
		for _, m := range regexp.MustCompile("`([A-Z0-9_]+)`").FindAllStringSubmatch(first, -1) {
			rows[m[1]] = true
		}
	}
	for name := range namesRead(t) {
		if !rows[name] {
			t.Errorf("%s is read by chatd but has no row in README.md's tables", name)
		}
	}
}
