package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestPasswordsCompare(t *testing.T) {
	t.Parallel()
	p, err := newPasswords(bcrypt.MinCost, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, err := p.hash(ctx, "hunter22")
	if err != nil {
		t.Fatal(err)
	}
	if cost, _ := bcrypt.Cost([]byte(h)); cost != bcrypt.MinCost {
		t.Fatalf("cost %d", cost)
	}
	for _, c := range []struct {
		hash, pw string
		want     bool
	}{{h, "hunter22", true}, {h, "hunter23", false}, {"", "hunter22", false}, {"", "", false}} {
		matched, err := p.match(ctx, c.hash, c.pw)
		if got := matched != ""; err != nil || got != c.want {
			t.Errorf("compare(%q, %q) = %v, %v; want %v", c.hash, c.pw, got, err, c.want)
		}
	}
	if _, err := newPasswords(3, 1, time.Second); err == nil {
		t.Fatal("cost 3 accepted")
	}
}

func TestPasswordsSaturated(t *testing.T) {
	t.Parallel()
	p, err := newPasswords(bcrypt.MinCost, 1, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	release, err := p.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := p.hash(context.Background(), "password"); !errors.Is(err, ErrBusy) {
		t.Fatalf("hash with every slot taken: %v, want ErrBusy", err)
	}
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Fatalf("gave up after %v, before the queue wait", waited)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.match(ctx, "", "password"); !errors.Is(err, context.Canceled) {
		t.Fatalf("compare with a cancelled context: %v", err)
	}
	release()
	if _, err := p.hash(context.Background(), "password"); err != nil {
		t.Fatalf("hash after release: %v", err)
	}
}

// TestDummyHash checks the hash compared for unknown emails: a well-formed
// bcrypt hash of the configured cost (so a comparison does the full work
// and fails as a wrong password does), made without hashing at that cost:
// a hasher of bcrypt's highest cost (days per hash) is ready at once.
func TestDummyHash(t *testing.T) {
	t.Parallel()
	for _, cost := range []int{bcrypt.MinCost, 5, DefaultBcryptCost} {
		h, err := dummyHash(cost)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := bcrypt.Cost(h); err != nil || got != cost {
			t.Fatalf("cost %d: dummy %q states cost %d (%v)", cost, h, got, err)
		}
		if cost > 5 {
			continue // the full comparison below takes a quarter second at 12
		}
		if err := bcrypt.CompareHashAndPassword(h, []byte("hunter22")); !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			t.Fatalf("cost %d: comparing with the dummy: %v, want a mismatch", cost, err)
		}
	}
	made := make(chan error, 1)
	go func() {
		p, err := newPasswords(bcrypt.MaxCost, 1, time.Second)
		if err == nil {
			if c, cerr := bcrypt.Cost(p.dummy); cerr != nil || c != bcrypt.MaxCost {
				err = errors.Join(errors.New("dummy of the wrong cost"), cerr)
			}
		}
		made <- err
	}()
	select {
	case err := <-made:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("newPasswords at bcrypt's highest cost still hashing after 10s")
	}
}

// TestFailedCheckWorkSameWhateverStoredCost: once CHATD_BCRYPT_COST
// changed, a wrong password for an account whose hash is of a lower cost
// (raised only at a successful sign-in), of the configured one, or of a
// higher one (kept), and an unknown email, each cost the same bcrypt work
// (the sum of 2^cost of the comparisons made): that of the highest cost
// compared since the start.
func TestFailedCheckWorkSameWhateverStoredCost(t *testing.T) {
	t.Parallel()
	const configured = 6
	p, err := newPasswords(configured, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	hashAtCost := func(cost int) []string {
		h, err := bcrypt.GenerateFromPassword([]byte("the right password"), cost)
		if err != nil {
			t.Fatal(err)
		}
		return []string{string(h)}
	}
	var work int
	p.compared = func(cost int) { work += 1 << cost }
	for _, c := range []struct {
		name   string
		hashes []string
		want   int
	}{
		{"unknown email", nil, 1 << configured},
		{"stored at a lower cost", hashAtCost(4), 1 << configured},
		{"stored at the configured cost", hashAtCost(configured), 1 << configured},
		{"stored at a higher cost", hashAtCost(8), 1 << 8},
		{"unknown email, once a higher cost was seen", nil, 1 << 8},
		{"stored at a lower cost, once a higher cost was seen", hashAtCost(4), 1 << 8},
		{"stored at the configured cost, once a higher cost was seen", hashAtCost(configured), 1 << 8},
	} {
		work = 0
		i, form, err := p.matchAny(context.Background(), c.hashes, "a wrong password")
		if err != nil || i != -1 || form != "" {
			t.Fatalf("%s: %d %q %v, want no match", c.name, i, form, err)
		}
		if work != c.want {
			t.Errorf("%s: bcrypt work %d, want %d", c.name, work, c.want)
		}
	}
}
