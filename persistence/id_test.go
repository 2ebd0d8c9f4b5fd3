package persistence

import "testing"

func TestNewIDOrderAndForm(t *testing.T) {
	prev := NewID()
	for i := 0; i < 10000; i++ {
		id := NewID()
		if !ValidID(id) {
			t.Fatalf("invalid id %q", id)
		}
		// Within one second and without the counter wrapping (a 1 in
		// 1,600 chance per run), later ids sort after earlier ones.
		if id <= prev && id[:8] == prev[:8] && id[18:] != "000000" {
			t.Fatalf("id %s sorts before the earlier %s", id, prev)
		}
		prev = id
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"0123456789abcdef01234567", true},
		{"0123456789ABCDEF01234567", false},
		{"0123456789abcdef0123456", false},
		{"0123456789abcdef012345678", false},
		{"0123456789abcdef0123456g", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidID(tt.id); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}
