package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestAcceptedSecrets: tokens signed with an accepted secret verify, the
// signing secret still signs, and a secret neither signing nor accepted
// is refused. The rotation of docs/deploy.md, instance by instance: during
// each step every token any instance issues is accepted by every other.
func TestAcceptedSecrets(t *testing.T) {
	t.Parallel()
	oldS := []byte("old secret, at least thirty-two bytes long")
	newS := []byte("new secret, at least thirty-two bytes long")
	other := []byte("some other secret, thirty-two bytes or more")
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	mk := func(t *testing.T, secret []byte, accepted ...[]byte) *tokens {
		t.Helper()
		tk, err := newTokens(Options{Secret: secret, Accepted: accepted, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	type instance struct {
		secret   []byte
		accepted [][]byte
	}
	cases := []struct {
		name string
		// Two instances during a rolling restart: one not yet restarted,
		// one restarted with the step's settings; tokens must pass both ways.
		before, after instance
	}{
		{"no rotation", instance{oldS, nil}, instance{oldS, nil}},
		{"step 1: the new secret accepted", instance{oldS, nil}, instance{oldS, [][]byte{newS}}},
		{"step 2: the new secret signs, the old one accepted", instance{oldS, [][]byte{newS}}, instance{newS, [][]byte{oldS}}},
		{"step 3: the old secret dropped", instance{newS, [][]byte{oldS}}, instance{newS, nil}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a, b := mk(t, c.before.secret, c.before.accepted...), mk(t, c.after.secret, c.after.accepted...)
			for _, pair := range []struct {
				name           string
				issuer, verify *tokens
			}{{"before to after", a, b}, {"after to before", b, a}} {
				tok, _, err := pair.issuer.issue("0123456789abcdef01234567", 3)
				if err != nil {
					t.Fatal(err)
				}
				if cl, err := pair.verify.parse(tok); err != nil || cl.Subject != "0123456789abcdef01234567" || *cl.TokenVersion != 3 {
					t.Errorf("%s: token refused or misread: %+v %v", pair.name, cl, err)
				}
			}
		})
	}

	// An accepted secret verifies but never signs; a secret neither
	// signing nor accepted is refused.
	rotating := mk(t, newS, oldS)
	tok, _, err := rotating.issue("0123456789abcdef01234567", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mk(t, oldS).parse(tok); err == nil {
		t.Error("a token of the rotating instance verified with the accepted secret alone: it was signed with it")
	}
	foreign, _, err := mk(t, other).issue("0123456789abcdef01234567", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotating.parse(foreign); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("a token of another secret: %v, want a signature error", err)
	}
}

func TestAcceptedSecretsRefused(t *testing.T) {
	t.Parallel()
	secret := []byte("the signing secret, thirty-two bytes long")
	cases := []struct {
		name     string
		accepted [][]byte
		want     string
	}{
		{"too short", [][]byte{[]byte("short")}, "accepted JWT secret 1 must be at least 32 bytes"},
		{"the signing secret again", [][]byte{[]byte("another secret, thirty-two bytes long"), secret}, "accepted JWT secret 2 is the signing secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if _, err := newTokens(Options{Secret: secret, Accepted: c.accepted}); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

// TestClockSkew: a token issued by an instance whose clock is ahead of the
// verifying one's (its iat in the verifier's future) is accepted, so the
// instances' clocks need not agree (docs/scale.md, "Clocks"); only its
// expiry is judged by the verifier's clock, with the leeway. A token
// without iat is still refused.
func TestClockSkew(t *testing.T) {
	t.Parallel()
	secret := []byte("a secret of at least thirty-two bytes")
	issued := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := func(now time.Time) *tokens {
		tk, err := newTokens(Options{Secret: secret, TTL: time.Hour, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	tok, _, err := at(issued).issue("0123456789abcdef01234567", 1)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		skew time.Duration // the verifier's clock less the issuer's
		ok   bool
	}{
		{"verifier 60 s behind", -60 * time.Second, true},
		{"verifier 10 min behind", -10 * time.Minute, true},
		{"verifier 60 s ahead", 60 * time.Second, true},
		{"verifier past the expiry, within the leeway", time.Hour + DefaultLeeway - time.Second, true},
		{"verifier past the expiry and the leeway", time.Hour + DefaultLeeway, false},
	}
	for _, c := range cases {
		if _, err := at(issued.Add(c.skew)).parse(tok); (err == nil) != c.ok {
			t.Errorf("%s: %v, want accepted %v", c.name, err, c.ok)
		}
	}

	noIAT, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject: "0123456789abcdef01234567", Issuer: DefaultIssuer, Audience: jwt.ClaimStrings{DefaultAudience},
		ExpiresAt: jwt.NewNumericDate(issued.Add(time.Hour)),
	}, TokenVersion: new(int64(1))}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := at(issued).parse(noIAT); err == nil || !strings.Contains(err.Error(), "iat") {
		t.Errorf("a token without iat: %v, want refused naming iat", err)
	}
}
