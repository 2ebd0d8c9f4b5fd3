package api_test

import (
	"regexp"
	"strings"
	"testing"

	"chatd/persistence"
	"chatd/transport/api"
)

// TestExportEachMessageOnce: the Markdown export prints every message
// exactly once, numbered in print order: the main thread (what the app
// shows: under each message the version leading to the newest message),
// then each other version in its own section. Before, each message of
// the main thread after the first was queued again as "another version"
// of itself, so a thread of n messages printed about n²/2 of them; and
// the main thread started at the newest root and followed the newest
// reply, so a thread continued from an older version (an edit or a
// regenerate, then "go back to version 1 and continue") printed the
// abandoned version as the conversation.
func TestExportEachMessageOnce(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	for _, tc := range []struct {
		name    string
		parents []int  // parent of each message, by index; -1: a root
		roles   string // of each message: U(ser) or A(ssistant)
		want    []string
	}{
		{"one thread", []int{-1, 0, 1, 2}, "UAUA", []string{
			"### 1. User\n\nm0", "### 2. Assistant\n\nm1", "### 3. User\n\nm2", "### 4. Assistant\n\nm3"}},
		{"a regenerated answer", []int{-1, 0, 0, 2}, "UAAU", []string{
			"### 1. User\n\nm0", "### 2. Assistant (version 2 of 2)\n\nm2", "### 3. User\n\nm3",
			"## Another version of message 2", "### 4. Assistant (version 1 of 2)\n\nm1"}},
		{"an edited first question", []int{-1, 0, -1, 2}, "UAUA", []string{
			"### 1. User (version 2 of 2)\n\nm2", "### 2. Assistant\n\nm3",
			"## Another version of message 1", "### 3. User (version 1 of 2)\n\nm0", "### 4. Assistant\n\nm1"}},
		{"an edited first question, then the first version continued", []int{-1, 0, -1, 2, 1, 4}, "UAUAUA", []string{
			"### 1. User (version 1 of 2)\n\nm0", "### 2. Assistant\n\nm1", "### 3. User\n\nm4", "### 4. Assistant\n\nm5",
			"## Another version of message 1", "### 5. User (version 2 of 2)\n\nm2", "### 6. Assistant\n\nm3"}},
		{"a regenerated answer, then the first answer continued", []int{-1, 0, 0, 1, 3}, "UAAUA", []string{
			"### 1. User\n\nm0", "### 2. Assistant (version 1 of 2)\n\nm1", "### 3. User\n\nm3", "### 4. Assistant\n\nm4",
			"## Another version of message 2", "### 5. Assistant (version 2 of 2)\n\nm2"}},
		{"another version continued towards its newest message", []int{-1, 0, 0, 2, 2, 3, 1}, "UAAUUAU", []string{
			"### 1. User\n\nm0", "### 2. Assistant (version 1 of 2)\n\nm1", "### 3. User\n\nm6",
			"## Another version of message 2", "### 4. Assistant (version 2 of 2)\n\nm2",
			"### 5. User (version 1 of 2)\n\nm3", "### 6. Assistant\n\nm5",
			"## Another version of message 5", "### 7. User (version 2 of 2)\n\nm4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := e.conversation(t, owner)
			var ids []string
			for i, p := range tc.parents {
				m := persistence.Message{ConversationID: c.ID, OwnerID: owner, Role: persistence.RoleUser,
					Content: "m" + string(rune('0'+i)), Status: persistence.StatusComplete}
				if tc.roles[i] == 'A' {
					m.Role = persistence.RoleAssistant
				}
				if p >= 0 {
					m.ParentID = ids[p]
				}
				if err := e.store.InsertMessage(t.Context(), &m); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, m.ID)
			}
			_, body := e.get(t, owner, "/api/conversations/"+c.ID+"/export")
			md := string(body)
			if n := len(regexp.MustCompile(`(?m)^### \d+\. `).FindAllString(md, -1)); n != len(ids) {
				t.Fatalf("%d messages printed, want %d:\n%s", n, len(ids), md)
			}
			at := 0
			for _, want := range tc.want {
				i := strings.Index(md[at:], want)
				if i < 0 {
					t.Fatalf("export lacks %q (in this order):\n%s", want, md)
				}
				at += i + len(want)
			}
		})
	}
}
