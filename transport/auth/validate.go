package auth

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"chatd/persistence"
	"chatd/transport/httperr"
)

// Field limits.
const (
	maxEmailBytes = 254 // RFC 5321 path limit
	maxNameChars  = 100
)

// normalizeEmail trims and lower-cases an email address.
func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// validEmail reports whether s (normalised) is a bare address: no display
// name, no angle brackets, no comments.
func validEmail(s string) bool {
	if s == "" || len(s) > maxEmailBytes {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s && strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".")
}

// newUser validates a registration and returns the user to store (without
// its password hash).
func newUser(req registerRequest) (persistence.User, error) {
	email := normalizeEmail(req.Email)
	name := strings.TrimSpace(req.Name)
	switch {
	case !validEmail(email):
		return persistence.User{}, httperr.InvalidField("email", "must be an email address like name@example.com")
	case utf8.RuneCountInString(req.Password) < MinPasswordChars:
		return persistence.User{}, httperr.InvalidField("password", "must be at least 8 characters")
	case len(req.Password) > MaxPasswordBytes:
		return persistence.User{}, httperr.InvalidField("password", "must be at most 72 bytes")
	case name == "":
		return persistence.User{}, httperr.InvalidField("name", "is required")
	case utf8.RuneCountInString(name) > maxNameChars || !utf8.ValidString(name):
		return persistence.User{}, httperr.InvalidField("name", "must be at most 100 characters")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return persistence.User{}, httperr.InvalidField("name", "must not contain control characters")
	}
	return persistence.User{Email: email, Name: name}, nil
}
