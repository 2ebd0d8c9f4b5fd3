package protocol

import (
	"encoding/json"
	"os"
	"testing"
)

// visibleCase is one text of testdata/visible.json, which the client's
// lib/visible.test.ts reads too: both sides must agree on what a blank
// message is, or the client sends what the server refuses (a pending
// bubble and an error) or stores a message that shows nothing.
type visibleCase struct {
	Text    string `json:"text"`
	Visible bool   `json:"visible"`
	What    string `json:"what"`
}

func readVisibleCases(t *testing.T) []visibleCase {
	t.Helper()
	data, err := os.ReadFile("testdata/visible.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []visibleCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("testdata/visible.json: %v", err)
	}
	return cases
}

func TestHasVisible(t *testing.T) {
	t.Parallel()
	for _, tc := range readVisibleCases(t) {
		if got := HasVisible(tc.Text); got != tc.Visible {
			t.Errorf("HasVisible(%+q) (%s) = %v, want %v", tc.Text, tc.What, got, tc.Visible)
		}
	}
}

// TestSendOfNothingVisible checks that a send whose content shows nothing
// is refused as empty content always was (invalid_field, "content is
// required"), and one that shows something is accepted.
func TestSendOfNothingVisible(t *testing.T) {
	t.Parallel()
	for _, tc := range readVisibleCases(t) {
		content, err := json.Marshal(tc.Text)
		if err != nil {
			t.Fatal(err)
		}
		_, perr := DecodeClient([]byte(`{"type":"send","content":` + string(content) + `}`))
		switch {
		case tc.Visible && perr != nil:
			t.Errorf("%s (%+q): refused: %v", tc.What, tc.Text, perr)
		case !tc.Visible && (perr == nil || perr.Code != CodeInvalidField || perr.Message != "content is required"):
			t.Errorf("%s (%+q): got %v, want invalid_field, content is required", tc.What, tc.Text, perr)
		}
	}
}
