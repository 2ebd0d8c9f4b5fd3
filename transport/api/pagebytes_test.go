package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"chatd/persistence"
	"chatd/transport/api"
)

// TestMessagePageBytes: a conversation's page is bounded in bytes as well
// as in messages. Ten messages of 128 KiB of < & > are 768 KiB each as
// JSON (each escaped to \u003c: six bytes): the newest page holds two,
// 1.5 MiB, not all ten (7.5 MiB, held by the request until a slow reader
// took it), and says hasMore; paging back with ?before= reaches every
// message, no answer over persistence.DefaultPageBytes of text.
func TestMessagePageBytes(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	contents := make([]string, 10)
	for i := range contents {
		contents[i] = fmt.Sprint(i) + strings.Repeat("<&>", (128<<10)/3)
	}
	c, all := e.conversation(t, owner, contents...)
	base := "/api/conversations/" + c.ID
	var got []string
	path := base
	for pages := 0; ; pages++ {
		if pages == len(all) {
			t.Fatalf("no last page in %d: %d messages read", pages, len(got))
		}
		res, body := e.get(t, owner, path)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %.200s", path, res.StatusCode, body)
		}
		if len(body) > persistence.DefaultPageBytes+16<<10 {
			t.Fatalf("GET %s: %d bytes, over the page's %d", path, len(body), persistence.DefaultPageBytes)
		}
		var p pageBody
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		if pages == 0 && (len(p.Messages) != 2 || p.HasMore == nil || !*p.HasMore) {
			t.Fatalf("newest page: %d messages, hasMore %v; want 2 and true", len(p.Messages), p.HasMore)
		}
		if len(p.Messages) == 0 {
			t.Fatalf("GET %s: an empty page", path)
		}
		got = append(ids(p.Messages), got...)
		if p.HasMore == nil || !*p.HasMore {
			break
		}
		path = base + "/messages?before=" + p.Messages[0].ID
	}
	if strings.Join(got, ",") != strings.Join(all, ",") {
		t.Fatalf("paged back to %v, want %v", got, all)
	}
}
