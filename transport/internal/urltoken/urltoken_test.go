package urltoken

import (
	"net/http/httptest"
	"testing"
)

// TestInQuery: a token parameter is seen in any case and spelling of the
// query; other parameters are not taken for one.
func TestInQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query string
		want  bool
	}{
		{"", false},
		{"conversationId=abc&lastSeq=3", false},
		{"tokens=1", false},
		{"mytoken=1", false},
		{"token=x", true},
		{"Token=x", true},
		{"TOKEN=x", true},
		{"Access_Token=x", true},
		{"JWT=x", true},
		{"a=1&BeArEr=x", true},
		{"token", true},
		{"%74oken=x", true},
		{"%54OKEN=x", true},
		{"a=1;token=x", true},
		{"a=%zz&Auth=x", true},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/ws?"+tc.query, nil)
		if got := InQuery(r); got != tc.want {
			t.Errorf("?%s: %v, want %v", tc.query, got, tc.want)
		}
	}
}
