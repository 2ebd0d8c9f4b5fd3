package mongo

import (
	"regexp"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/internal/emailform"
)

// TestEmailCandidatesCoverEveryRewrite: an email the rewrite's filter
// (emailCandidates) does not select is its own normal form, so reading
// the candidates alone misses no account to rewrite.
func TestEmailCandidatesCoverEveryRewrite(t *testing.T) {
	t.Parallel()
	candidate := regexp.MustCompile(emailCandidates[0].Value.(bson.Regex).Pattern)
	for r := rune(0); r <= 0x80; r++ {
		for _, email := range []string{string(r), "a" + string(r) + "@example.com", "ab@example.com" + string(r)} {
			if !candidate.MatchString(email) && strings.ToLower(emailform.Normalize(email)) != email {
				t.Errorf("%q is not selected but its normal form is %q", email, emailform.Normalize(email))
			}
		}
	}
	for _, email := range []string{"νικος@example.gr", "ας\uff11@example.gr", "Ada@example.com"} {
		if !candidate.MatchString(email) {
			t.Errorf("%q is not selected", email)
		}
	}
}
