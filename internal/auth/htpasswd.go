package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
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
//
// Checking a password costs a bcrypt comparison (tens of milliseconds of
// CPU), so Htpasswd runs at most a few at once (half the CPUs, at least
// one), each waiting for its turn at most checkWait; and it remembers the
// credentials it verified — as a keyed hash of user, password and the
// stored bcrypt hash, so that a changed or removed entry no longer
// matches — so that users logging in again skip bcrypt altogether and a
// flood of wrong passwords cannot slow them down.
type Htpasswd struct {
	path string

	// dummy is compared against for unknown users, so that a miss costs
	// as much as a wrong password.
	dummy []byte

	mu    sync.Mutex
	mtime time.Time
	size  int64
	users map[string][]byte

	// checks holds a token per bcrypt comparison running; a check waits
	// at most wait (checkWait) for one.
	checks chan struct{}
	wait   time.Duration
	// verified are credentials checked before: HMAC-SHA256 under
	// verifiedKey (random, per process) of user, password and hash.
	verifiedKey []byte
	verifiedMu  sync.Mutex
	verified    map[[sha256.Size]byte]struct{}
}

// ErrBusy means every password check slot stayed taken for checkWait.
var ErrBusy = errors.New("auth: password checks are busy")

const (
	// checkWait is how long a password check waits for a slot.
	checkWait = 2 * time.Second
	// maxVerified bounds the credentials remembered (forgotten all at
	// once when full).
	maxVerified = 4096
)

// OpenHtpasswd reads the user file at path.
func OpenHtpasswd(path string) (*Htpasswd, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	h := &Htpasswd{
		path: path, checks: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)), wait: checkWait,
		verifiedKey: key, verified: map[[sha256.Size]byte]struct{}{},
	}
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

// Authenticate checks user's password: ErrBadCredentials for an unknown
// user or a wrong password, ErrBusy when no check slot became free in
// time (or ctx's error when it ended first).
func (h *Htpasswd) Authenticate(ctx context.Context, user, password string) error {
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
	mark := h.mark(user, password, hash)
	if ok && h.wasVerified(mark) {
		return nil
	}
	timer := time.NewTimer(h.wait)
	defer timer.Stop()
	select {
	case h.checks <- struct{}{}:
	case <-timer.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
	err = bcrypt.CompareHashAndPassword(hash, []byte(password))
	<-h.checks
	if !ok || err != nil {
		return ErrBadCredentials
	}
	h.remember(mark)
	return nil
}

// Known reports, without a bcrypt comparison, whether user and password
// were verified before and the user's entry is unchanged since.
func (h *Htpasswd) Known(user, password string) bool {
	users, err := h.load()
	if err != nil {
		return false
	}
	hash, ok := users[user]
	return ok && h.wasVerified(h.mark(user, password, hash))
}

// mark is the keyed hash credentials are remembered by.
func (h *Htpasswd) mark(user, password string, hash []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, h.verifiedKey)
	for _, part := range [][]byte{[]byte(user), []byte(password), hash} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		m.Write(n[:])
		m.Write(part)
	}
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

func (h *Htpasswd) wasVerified(mark [sha256.Size]byte) bool {
	h.verifiedMu.Lock()
	defer h.verifiedMu.Unlock()
	_, ok := h.verified[mark]
	return ok
}

func (h *Htpasswd) remember(mark [sha256.Size]byte) {
	h.verifiedMu.Lock()
	defer h.verifiedMu.Unlock()
	if len(h.verified) >= maxVerified {
		clear(h.verified)
	}
	h.verified[mark] = struct{}{}
}
