package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// singleHostProxies is where each file states CHATD_TRUSTED_PROXIES for
// nginx on chatd's own host: the first group is the value.
var singleHostProxies = []struct{ file, pattern string }{
	{"../README.md", "Behind nginx on the same host: `([^`]+)`"},
	{"deploy.md", "\\| `CHATD_TRUSTED_PROXIES` \\| `([^`]+)`"},
	{"../deploy/chatd.env.example", `(?m)^CHATD_TRUSTED_PROXIES=(\S+)$`},
	{"../nginx.conf", `(?m)^#\s+CHATD_TRUSTED_PROXIES=(\S+)`},
}

// TestTrustedProxiesAgree: the README, deploy.md, the environment file and
// nginx.conf's header give nginx on the same host one and the same
// CHATD_TRUSTED_PROXIES (nginx.conf said 127.0.0.1, the others
// 127.0.0.1,::1).
func TestTrustedProxiesAgree(t *testing.T) {
	t.Parallel()
	values := map[string]string{}
	for _, s := range singleHostProxies {
		data, err := os.ReadFile(s.file)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(s.pattern).FindAllStringSubmatch(string(data), -1)
		if len(m) != 1 {
			t.Errorf("%s: CHATD_TRUSTED_PROXIES for nginx on the same host found %d times, want once (pattern %q)", s.file, len(m), s.pattern)
			continue
		}
		values[m[0][1]] = s.file
	}
	if len(values) > 1 {
		t.Errorf("the files state different values: %v", values)
	}
}

// forwardedHeaderRe is a forwarded request header's name.
var forwardedHeaderRe = regexp.MustCompile(`\bX-(?:Forwarded-[A-Za-z]+|Real-IP)\b`)

// TestBelievedHeadersAreRead: a sentence of the documents (or of the
// comments of nginx.conf and the environment file) saying a forwarded
// header is believed names only headers chatd reads: gin's client-IP
// headers and those the code asks for by name. They said
// X-Forwarded-Proto was believed, which no code reads.
func TestBelievedHeadersAreRead(t *testing.T) {
	t.Parallel()
	read := map[string]bool{}
	gin.SetMode(gin.ReleaseMode) // as transport.NewRouter does: no debug banner
	for _, h := range gin.New().RemoteIPHeaders {
		read[h] = true
	}
	for _, pattern := range []string{"../transport/*.go", "../transport/*/*.go", "../cmd/chatd/*.go", "../cmd/chatd/*/*.go"} {
		for _, f := range mustGlob(t, pattern) {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range regexp.MustCompile(`Header\.Get\("(X-[A-Za-z-]+)"\)`).FindAllStringSubmatch(string(data), -1) {
				read[m[1]] = true
			}
		}
	}
	if !read["X-Forwarded-Host"] || !read["X-Forwarded-For"] {
		t.Fatalf("the headers the code reads were not found: %v", read)
	}
	files := append(docFiles(t), "../deploy/chatd.env.example", "../nginx.conf")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sentences(string(data), filepath.Ext(f) != ".md") {
			if !strings.Contains(s, "believ") {
				continue
			}
			for _, h := range forwardedHeaderRe.FindAllString(s, -1) {
				if !read[h] {
					t.Errorf("%s: says %s is believed, but chatd does not read it: %q", f, h, s)
				}
			}
		}
	}
}

// sentenceEnd ends a sentence or a clause.
var sentenceEnd = regexp.MustCompile(`[.;] `)

// sentences splits a document into sentences (at ". " and "; ", blank
// lines and table rows); comments keeps only the comment lines of a
// configuration file, each comment block its own text.
func sentences(text string, comments bool) []string {
	var blocks []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			blocks = append(blocks, strings.Join(cur, " "))
			cur = nil
		}
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case comments && !strings.HasPrefix(line, "#"):
			flush()
		case comments:
			cur = append(cur, strings.TrimSpace(strings.TrimLeft(line, "#")))
		case line == "" || strings.HasPrefix(line, "|"):
			flush()
			cur = append(cur, line)
			flush()
		default:
			cur = append(cur, line)
		}
	}
	flush()
	var out []string
	for _, b := range blocks {
		out = append(out, sentenceEnd.Split(b, -1)...)
	}
	return out
}
