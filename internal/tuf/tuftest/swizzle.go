package tuftest

// The malicious trust server: a Notary v1 read API that serves whatever
// files the test chooses, for client-side attack tests. It answers the
// routes a client reads — <role>.json, <n>.<role>.json and
// <role>.<sha256>.json — from files it was given, and lets a test replace
// the answer for any role with its own handler (an endless body, a lying
// Content-Length, a trickle).

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/tuf"
)

// Server is a trust server under an attacker's control. Every file it is
// given stays reachable by version and by SHA-256, as on a real server;
// the current file of a role is the one given last. It is safe for
// concurrent use.
type Server struct {
	gun string

	mu       sync.Mutex
	current  map[string][]byte       // role → <role>.json
	byName   map[string][]byte       // "<n>.<role>" and "<role>.<sha256 hex>"
	override map[string]http.Handler // role → answers every request for it
	requests []string
}

// NewServer returns an empty malicious server for gun; mount it with
// httptest.NewServer.
func NewServer(gun string) *Server {
	return &Server{gun: gun, current: map[string][]byte{}, byName: map[string][]byte{}, override: map[string]http.Handler{}}
}

// Publish serves every signed file of r as the current version of its role.
func (s *Server) Publish(r *Repo) {
	for role, b := range r.Signed {
		if b != nil {
			s.Serve(role, b)
		}
	}
}

// PublishFiles serves files (role → bytes, as Repo.Files returns) as the
// current versions of their roles.
func (s *Server) PublishFiles(files map[string][]byte) {
	for role, b := range files {
		s.Serve(role, b)
	}
}

// Serve makes data the current file of role (and reachable by its version,
// when it has one, and by its SHA-256). The bytes need not be valid.
func (s *Server) Serve(role string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current[role] = data
	sum := sha256.Sum256(data)
	s.byName[role+"."+hex.EncodeToString(sum[:])] = data
	if c, err := tuf.Peek(data); err == nil {
		s.byName[strconv.Itoa(c.Version)+"."+role] = data
	}
}

// ServeAt answers requests for role by checksum with data, whatever data
// hashes to: a server substituting other bytes under an honest name.
func (s *Server) ServeAt(role string, sha256Sum []byte, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byName[role+"."+hex.EncodeToString(sha256Sum)] = data
}

// Override answers every request for role (current, by version and by
// checksum) with h; a nil h removes the override.
func (s *Server) Override(role string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h == nil {
		delete(s.override, role)
		return
	}
	s.override[role] = h
}

// Forget stops serving role entirely (every request for it is 404).
func (s *Server) Forget(role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.current, role)
	for name := range s.byName {
		if roleOf(name) == role {
			delete(s.byName, name)
		}
	}
}

// Requests returns the metadata files asked for so far, in order
// ("timestamp.json", "snapshot.<sha256>.json", …).
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// roleOf returns the role of "<role>", "<n>.<role>" or "<role>.<hash>".
func roleOf(name string) string {
	before, after, found := strings.Cut(name, ".")
	if !found {
		return name
	}
	if _, err := strconv.Atoi(before); err == nil {
		return after
	}
	return before
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	prefix := notaryapi.TUFPath(s.gun)
	file, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok || r.Method != http.MethodGet || !strings.HasSuffix(file, ".json") {
		notFound(w)
		return
	}
	name := strings.TrimSuffix(file, ".json")
	role := roleOf(name)
	s.mu.Lock()
	s.requests = append(s.requests, file)
	h := s.override[role]
	data, found := s.current[name]
	if name != role {
		data, found = s.byName[name]
	}
	s.mu.Unlock()
	if h != nil {
		h.ServeHTTP(w, r)
		return
	}
	if !found {
		notFound(w)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", notaryapi.ContentTypeJSON)
	w.WriteHeader(notaryapi.MetadataNotFound.Status())
	_, _ = w.Write(notaryapi.ErrorBody(notaryapi.MetadataNotFound, nil))
}

// Endless answers 200 with Prefix and then filler bytes without end, until
// the client goes away: the endless-data attack. With DeclaredLength > 0
// it announces that Content-Length (and stops after it). Status 0 is 200.
type Endless struct {
	Prefix         []byte
	DeclaredLength int64
	Status         int
	sent           atomic.Int64
}

// Sent returns the bytes written so far.
func (e *Endless) Sent() int64 { return e.sent.Load() }

func (e *Endless) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e.DeclaredLength > 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(e.DeclaredLength, 10))
	}
	status := e.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	fl, _ := w.(http.Flusher)
	chunk := bytes.Repeat([]byte(" "), 32<<10)
	buf := e.Prefix
	for r.Context().Err() == nil {
		if e.DeclaredLength > 0 {
			left := e.DeclaredLength - e.sent.Load()
			if left <= 0 {
				return
			}
			if int64(len(buf)) > left {
				buf = buf[:left]
			}
		}
		n, err := w.Write(buf)
		e.sent.Add(int64(n))
		if err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
		buf = chunk
	}
}

// Trickle answers 200 and then one byte per Interval until the client goes
// away: a slow-retrieval attack.
type Trickle struct{ Interval time.Duration }

func (tr Trickle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	tick := time.NewTicker(tr.Interval)
	defer tick.Stop()
	for {
		if _, err := w.Write([]byte("{")); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// Files returns a copy of the last signed bytes of every role: one state of
// the repository, to serve again later (rollback, mix-and-match).
func (r *Repo) Files() map[string][]byte {
	out := make(map[string][]byte, len(r.Signed))
	for role, b := range r.Signed {
		if b != nil {
			out[role] = b
		}
	}
	return out
}

// SetThreshold sets the threshold of a base role in the root, or of a
// delegation in its parent.
func (r *Repo) SetThreshold(role string, threshold int) {
	if !tuf.IsDelegation(role) {
		r.Root.Roles[role].Threshold = threshold
		return
	}
	for _, d := range r.Targets[tuf.Parent(role)].Delegations.Roles {
		if d.Name == role {
			d.Threshold = threshold
			return
		}
	}
	r.t.Fatalf("tuftest: %s is not delegated", role)
}

// SwapTarget rewrites a signed targets file so that target name points at
// content (its length and sha256), keeping the original signatures: the
// arbitrary-software attack by someone without the role's key.
func SwapTarget(t testing.TB, file []byte, name string, content []byte) []byte {
	t.Helper()
	sum := sha256.Sum256(content)
	return Swizzle(t, file, func(signed map[string]any) {
		targets, _ := signed["targets"].(map[string]any)
		if targets == nil {
			targets = map[string]any{}
			signed["targets"] = targets
		}
		targets[name] = map[string]any{"length": len(content), "hashes": map[string]any{"sha256": base64.StdEncoding.EncodeToString(sum[:])}}
	})
}

// StripSignatures returns a signed file with no signatures at all.
func StripSignatures(t testing.TB, file []byte) []byte {
	t.Helper()
	var env map[string]json.RawMessage
	if err := json.Unmarshal(file, &env); err != nil {
		t.Fatal(err)
	}
	env["signatures"] = json.RawMessage("[]")
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// DuplicateSignature returns a signed file whose first signature appears n
// times: one key trying to count as n.
func DuplicateSignature(t testing.TB, file []byte, n int) []byte {
	t.Helper()
	var env struct {
		Signed     json.RawMessage   `json:"signed"`
		Signatures []json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal(file, &env); err != nil {
		t.Fatal(err)
	}
	if len(env.Signatures) == 0 {
		t.Fatal("tuftest: no signature to duplicate")
	}
	sigs := make([]json.RawMessage, n)
	for i := range sigs {
		sigs[i] = env.Signatures[0]
	}
	env.Signatures = sigs
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
