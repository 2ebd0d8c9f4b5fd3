package docs

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestBodyLimitNamesNginxLimit: nginx refuses a body past its
// client_max_body_size itself, with an HTML 413, before chatd sees it; so
// README's CHATD_BODY_LIMIT row and deploy.md's client_max_body_size note
// both say that the one must stay above the other, with nginx.conf's value.
func TestBodyLimitNamesNginxLimit(t *testing.T) {
	t.Parallel()
	conf, err := os.ReadFile("../nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*client_max_body_size (\S+);`).FindSubmatch(conf)
	if m == nil {
		t.Fatal("nginx.conf sets no client_max_body_size")
	}
	size := string(m[1])
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for _, l := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(l, "| `CHATD_BODY_LIMIT` |") {
			row = l
		}
	}
	if !strings.Contains(row, "`client_max_body_size` ("+size+")") || !strings.Contains(row, "HTML") {
		t.Errorf("README's CHATD_BODY_LIMIT row does not say nginx's client_max_body_size (%s) answers first, in HTML: %q", size, row)
	}
	deploy, err := os.ReadFile("deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	_, note, _ := strings.Cut(string(deploy), "- `client_max_body_size "+size+"`")
	note, _, _ = strings.Cut(note, "\n- ")
	if !strings.Contains(note, "CHATD_BODY_LIMIT") || !strings.Contains(note, "HTML `413`") {
		t.Errorf("deploy.md's client_max_body_size %s note does not say what raising CHATD_BODY_LIMIT past it does: %q", size, note)
	}
}
