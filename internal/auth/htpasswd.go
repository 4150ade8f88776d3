package auth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Htpasswd is a user file in the format docker-registry's htpasswd auth
// reads: one "user:hash" per line, bcrypt hashes only ($2y$, $2a$, $2b$),
// blank lines and '#' comments ignored. The file is re-read when its
// modification time or size changes, so users can be added without a
// restart; a file that no longer parses keeps the last good users.
type Htpasswd struct {
	path string

	// dummy is compared against for unknown users, so that a miss costs
	// as much as a wrong password.
	dummy []byte

	mu    sync.Mutex
	mtime time.Time
	size  int64
	users map[string][]byte
}

// OpenHtpasswd reads the user file at path.
func OpenHtpasswd(path string) (*Htpasswd, error) {
	h := &Htpasswd{path: path}
	if _, err := h.load(); err != nil {
		return nil, err
	}
	return h, nil
}

// ParseHtpasswd parses the content of a user file.
func ParseHtpasswd(b []byte) (map[string][]byte, error) {
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: want user:hash", n)
		}
		if !strings.HasPrefix(hash, "$2y$") && !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") {
			return nil, fmt.Errorf("line %d (%s): only bcrypt hashes are supported (htpasswd -B)", n, user)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("line %d (%s): %v", n, user, err)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q listed twice", n, user)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return users, nil
}

// load re-reads the file when it changed and returns the users.
func (h *Htpasswd) load() (map[string][]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fi, err := os.Stat(h.path)
	if err != nil {
		if h.users != nil {
			return h.users, nil
		}
		return nil, fmt.Errorf("auth: htpasswd: %w", err)
	}
	if h.users != nil && fi.ModTime().Equal(h.mtime) && fi.Size() == h.size {
		return h.users, nil
	}
	b, err := os.ReadFile(h.path)
	if err == nil {
		var users map[string][]byte
		if users, err = ParseHtpasswd(b); err == nil {
			h.users, h.mtime, h.size = users, fi.ModTime(), fi.Size()
			h.dummy = dummyHash(users, h.dummy)
			return users, nil
		}
	}
	if h.users != nil {
		return h.users, nil
	}
	return nil, fmt.Errorf("auth: htpasswd %s: %w", h.path, err)
}

// dummyHash returns a hash of a random password at the highest cost among
// users' hashes, reusing old when it has that cost.
func dummyHash(users map[string][]byte, old []byte) []byte {
	cost := bcrypt.MinCost
	for _, h := range users {
		if c, err := bcrypt.Cost(h); err == nil && c > cost {
			cost = c
		}
	}
	if c, err := bcrypt.Cost(old); err == nil && c == cost {
		return old
	}
	pw := make([]byte, 32)
	_, _ = rand.Read(pw)
	d, err := bcrypt.GenerateFromPassword(pw, cost)
	if err != nil {
		return old
	}
	return d
}

// ErrBadCredentials means an unknown user or a wrong password.
var ErrBadCredentials = errors.New("auth: bad credentials")

// Authenticate checks user's password.
func (h *Htpasswd) Authenticate(user, password string) error {
	users, err := h.load()
	if err != nil {
		return err
	}
	hash, ok := users[user]
	if !ok {
		h.mu.Lock()
		hash = h.dummy
		h.mu.Unlock()
	}
	err = bcrypt.CompareHashAndPassword(hash, []byte(password))
	if !ok || err != nil {
		return ErrBadCredentials
	}
	return nil
}
