package auth

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateSecret returns the secret kept in the file at path, creating
// it (32 random bytes, hex-encoded, mode 0600) when it does not exist, so
// tokens survive a restart. created reports whether it was made now. A file
// readable by others is tightened to 0600; one holding fewer than
// MinSecretBytes is an error.
func LoadOrCreateSecret(path string) (secret []byte, created bool, err error) {
	secret, err = readSecret(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err = createSecret(path); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, false, err
		}
		created = err == nil
		secret, err = readSecret(path)
	}
	return secret, created, err
}

func readSecret(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("restrict %s to mode 0600: %w", path, err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read JWT secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinSecretBytes {
		return nil, fmt.Errorf("the JWT secret in %s is %d bytes, fewer than %d: delete the file to have a new one made (every session ends)", path, len(b), MinSecretBytes)
	}
	return b, nil
}

// createSecret writes a new secret to a temporary file and links it into
// place, so a crash never leaves a half-written secret and two processes
// starting at once agree on one.
func createSecret(path string) error {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("generate JWT secret: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".jwt-secret-*")
	if err != nil {
		return fmt.Errorf("create JWT secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(raw) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write JWT secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("store JWT secret at %s: %w", path, err)
	}
	return nil
}

// fingerprintLabel is what a secret's fingerprint is the HMAC of.
const fingerprintLabel = "chatd session key fingerprint"

// SecretFingerprint names secret without revealing it: the first 8 bytes,
// hex-encoded, of HMAC-SHA256 keyed by the secret over a fixed label. Two
// instances compare fingerprints to learn whether they sign and accept
// the same tokens. It gives no more to guess the secret from than any
// token it signed does.
func SecretFingerprint(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(fingerprintLabel))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// DeriveKey returns a 32-byte key for purpose (a fixed label naming its
// use) derived from secret with HKDF-SHA256, so that a secret shared for
// one use (the JWT signing secret) keys another without being used
// directly: the derived key tells nothing of the secret, nor of the key
// of another purpose.
func DeriveKey(secret []byte, purpose string) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, secret, nil, purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("derive the %s: %w", purpose, err)
	}
	return k, nil
}
