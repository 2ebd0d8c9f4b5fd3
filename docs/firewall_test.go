package docs

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestClusterFirewallOpensChatdToNginx: scale.md's chatd listens on a
// private address for an nginx on another host (CHATD_ADDR,
// CHATD_TRUSTED_PROXIES), so its firewall step opens that port to that
// host, and deploy.md's firewall section (80, 443 and SSH only, chatd on
// 127.0.0.1), which scale.md's step 3 follows, sends a cluster there.
func TestClusterFirewallOpensChatdToNginx(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("scale.md")
	if err != nil {
		t.Fatal(err)
	}
	scale := string(data)
	addr := regexp.MustCompile(`(?m)^\s*CHATD_ADDR=(\S+):(\d+)$`).FindStringSubmatch(scale)
	proxy := regexp.MustCompile(`(?m)^\s*CHATD_TRUSTED_PROXIES=(\S+)$`).FindStringSubmatch(scale)
	if addr == nil || proxy == nil {
		t.Fatal("scale.md: no CHATD_ADDR=host:port or CHATD_TRUSTED_PROXIES= in its chatd.env")
	}
	allow := "ufw allow from " + proxy[1] + " to any port " + addr[2]
	if !strings.Contains(scale, allow) {
		t.Errorf("scale.md: chatd listens on %s:%s for nginx on %s, but no firewall step says %q", addr[1], addr[2], proxy[1], allow)
	}
	for _, port := range []string{"4222", "6222", "27017", addr[2]} {
		if !regexp.MustCompile(`(?m)^\s*\| [^|]+ \| ` + port + `\b`).MatchString(scale) {
			t.Errorf("scale.md: the firewall table has no row for port %s", port)
		}
	}
	deploy, err := os.ReadFile("deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	_, firewall, _ := strings.Cut(string(deploy), "## 6. Firewall")
	firewall, _, _ = strings.Cut(firewall, "\n## ")
	if !strings.Contains(continuation.ReplaceAllString(firewall, " "), `[scale.md](scale.md), "Firewall"`) {
		t.Errorf("deploy.md's firewall section does not send a cluster to scale.md, \"Firewall\"")
	}
}
