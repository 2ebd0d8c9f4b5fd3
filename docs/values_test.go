package docs

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"chatd/persistence"
	"chatd/transport/auth"
	"chatd/transport/ws"
)

// documentedValue is a number a document states, found by a pattern whose
// first group is the number as written ("1,000", "400384"), and the
// constant of the code it must equal.
type documentedValue struct {
	doc     string
	pattern string
	code    string // the constant, for the message
	want    int
}

// TestDocumentedValuesMatchTheCode: a limit the documents state in words
// is the limit the code enforces, so changing the constant without the
// sentence (or the sentence without the constant) fails here, as a
// documented variable the code does not read fails
// TestDocumentedVariablesExist.
func TestDocumentedValuesMatchTheCode(t *testing.T) {
	t.Parallel()
	apiRead := nginxAPIReadTimeout(t)
	for _, v := range []documentedValue{
		{"protocol.md", `follows the conversations it subscribed to, sent to or\s+regenerated in, until it unsubscribes from them: at most ([\d,]+) at once`,
			"ws.DefaultMaxFollowed", ws.DefaultMaxFollowed},
		{"protocol.md", `would make the connection follow more than ([\d,]+) conversations`,
			"ws.DefaultMaxFollowed", ws.DefaultMaxFollowed},
		{"protocol.md", "`CHATD_WS_QUEUE_BYTES` bytes: ([\\d,]+) MiB by default",
			"ws.DefaultQueueBytes in MiB", ws.DefaultQueueBytes >> 20},
		{"../README.md", "\\| `CHATD_WS_READ_LIMIT` \\| `([\\d,]+)`",
			"ws.DefaultReadLimit", ws.DefaultReadLimit},
		{"deploy.md", "`/api/`: buffered; responses with `X-Accel-Buffering: no` are not\\.\\s+`proxy_read_timeout (\\d+)s`",
			"nginx.conf's proxy_read_timeout on /api/", apiRead},
		{"../README.md", "a longer `proxy_read_timeout` on `/api/` than the shipped (\\d+) s",
			"nginx.conf's proxy_read_timeout on /api/", apiRead},
		{"../README.md", "\\| `CHATD_LOGIN_MAX_CHECKS_IP` \\| `([\\d,]+)`",
			"auth.DefaultMaxChecksPerIP", auth.DefaultMaxChecksPerIP},
		{"../README.md", `Those checks are bounded per client address too, right or\s+wrong and to any accounts \(([\d,]+) per window`,
			"auth.DefaultMaxChecksPerIP", auth.DefaultMaxChecksPerIP},
		{"api.md", "`CHATD_LOGIN_MAX_CHECKS_IP` \\(([\\d,]+) by default\\) password checks from the client's address",
			"auth.DefaultMaxChecksPerIP", auth.DefaultMaxChecksPerIP},
		{"../deploy/chatd.env.example", `#CHATD_LOGIN_MAX_CHECKS_IP=(\d+)`,
			"auth.DefaultMaxChecksPerIP", auth.DefaultMaxChecksPerIP},
		{"api.md", "message that would take the `content` and `reasoning` of its messages past\\s+(\\d+) MiB",
			"persistence.DefaultPageBytes in MiB", persistence.DefaultPageBytes >> 20},
	} {
		got, err := statedNumber(v.doc, v.pattern)
		if err != nil {
			t.Errorf("%s: %v", v.doc, err)
			continue
		}
		if got != v.want {
			t.Errorf("%s states %d where the code's %s is %d (pattern %q)", v.doc, got, v.code, v.want, v.pattern)
		}
	}
}

// statedNumber is the number pattern's first group finds in doc, with its
// thousands separators removed; the pattern must match exactly once.
func statedNumber(doc, pattern string) (int, error) {
	data, err := os.ReadFile(doc)
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(pattern).FindAllStringSubmatch(string(data), -1)
	if len(m) != 1 {
		return 0, fmt.Errorf("the sentence %q is found %d times, want once: reworded? update this test with the document", pattern, len(m))
	}
	return strconv.Atoi(strings.ReplaceAll(m[0][1], ",", ""))
}

// nginxAPIReadTimeout is the proxy_read_timeout, in seconds, of the
// repository's nginx.conf's location /api/.
func nginxAPIReadTimeout(t *testing.T) int {
	t.Helper()
	conf, err := os.ReadFile("../nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`location /api/ \{[^}]*proxy_read_timeout (\d+)s;`).FindSubmatch(conf)
	if m == nil {
		t.Fatal("nginx.conf: location /api/ sets no proxy_read_timeout")
	}
	n, err := strconv.Atoi(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
