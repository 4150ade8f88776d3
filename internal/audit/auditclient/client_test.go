package auditclient_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/audit/auditclient"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

type testLog struct {
	log   *audit.Log
	store audit.Store
	srv   *httptest.Server
	// hits counts requests by path.
	mu   sync.Mutex
	hits map[string]int
}

func newTestLog(t *testing.T) *testLog {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.New(audit.Config{Store: s.AuditLog(), Origin: "signet.test/audit", Signer: key, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	h, err := audit.NewHandler(audit.HandlerConfig{Store: s.AuditLog(), VerifierKey: l.VerifierKey()})
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLog{log: l, store: s.AuditLog(), hits: map[string]int{}}
	tl.srv = httptest.NewServer(http.StripPrefix("/audit", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tl.mu.Lock()
		tl.hits[r.URL.Path]++
		tl.mu.Unlock()
		h.ServeHTTP(w, r)
	})))
	t.Cleanup(tl.srv.Close)
	return tl
}

func (tl *testLog) add(t *testing.T, n int) {
	t.Helper()
	var wg sync.WaitGroup
	ids := make([]int64, n)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				a, err := tl.log.Append(t.Context(), audit.Event{
					Type: audit.AdmissionAllow, Actor: audit.Actor{Kind: audit.ActorUser, Name: "w"},
					Subject: audit.Subject{Image: fmt.Sprintf("img:%d", i)},
				})
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = a.ID
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for _, id := range ids {
		if _, _, err := tl.log.Await(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

func (tl *testLog) client(t *testing.T) *auditclient.Client {
	c, err := auditclient.New(tl.srv.URL+"/audit", tl.log.VerifierKey(), tl.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (tl *testLog) resetHits() map[string]int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	h := tl.hits
	tl.hits = map[string]int{}
	return h
}

func TestVerifyIsIncremental(t *testing.T) {
	tl := newTestLog(t)
	tl.add(t, 600)
	c := tl.client(t)
	tl.resetHits()
	st, rep, err := c.Verify(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 600 || rep.Checked != 600 || st.VerifiedSize != 600 {
		t.Fatalf("first run: %+v", rep)
	}
	full := tl.resetHits()
	// checkpoint, 3 level-0 tiles, 3 bundles, the partial level-1 tile.
	if len(full) != 8 {
		t.Fatalf("first run fetched %v", full)
	}
	path := filepath.Join(t.TempDir(), "state.json")
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}

	// Nothing new: only the checkpoint.
	st2, rep, err := c.Verify(t.Context(), st)
	if err != nil || rep.Checked != 0 || rep.Requests != 1 {
		t.Fatalf("unchanged log: %+v, %v", rep, err)
	}
	tl.resetHits()

	tl.add(t, 100)
	loaded, err := auditclient.LoadState(path)
	if err != nil || loaded.VerifiedSize != 600 {
		t.Fatalf("LoadState: %+v, %v", loaded, err)
	}
	_, rep, err = c.Verify(t.Context(), loaded)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OldSize != 600 || rep.Size != 700 || rep.Checked != 100 {
		t.Fatalf("second run: %+v", rep)
	}
	hits := tl.resetHits()
	for p := range hits {
		// Only the right edge: nothing of the first two full tiles.
		if strings.HasSuffix(p, "/000") || strings.HasSuffix(p, "/001") {
			t.Errorf("the second run fetched %s again", p)
		}
	}
	if hits["/tile/0/002.p/188"] != 1 || hits["/tile/entries/002.p/188"] != 1 {
		t.Fatalf("the second run fetched %v", hits)
	}
	_ = st2
}

func TestVerifyRefusesAnotherKey(t *testing.T) {
	tl := newTestLog(t)
	tl.add(t, 3)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	vkey, _ := audit.VerifierKey("signet.test/audit", other.Public().(ed25519.PublicKey))
	c, err := auditclient.New(tl.srv.URL+"/audit", vkey, tl.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Verify(t.Context(), nil); !errors.Is(err, auditclient.ErrVerification) {
		t.Fatalf("Verify with another key: %v", err)
	}
	if _, err := auditclient.New("ftp://x", tl.log.VerifierKey(), nil); err == nil {
		t.Fatal("New accepted an ftp URL")
	}
}

// TestProofsMatchTlog checks inclusion proofs against x/mod's tlog.
func TestProofsMatchTlog(t *testing.T) {
	tl := newTestLog(t)
	tl.add(t, 700)
	c := tl.client(t)
	cp, msg, err := c.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	entries, err := tl.store.Entries(t.Context(), 0, 700)
	if err != nil {
		t.Fatal(err)
	}
	for _, idx := range []uint64{0, 1, 255, 256, 511, 600, 698, 699} {
		p, err := c.Prove(t.Context(), cp, msg, idx)
		if err != nil {
			t.Fatalf("Prove(%d): %v", idx, err)
		}
		if err := c.VerifyProof(p); err != nil {
			t.Fatal(err)
		}
		rp := make(tlog.RecordProof, len(p.Hashes))
		for i, h := range p.Hashes {
			rp[i] = tlog.Hash(h)
		}
		if err := tlog.CheckRecord(rp, 700, tlog.Hash(cp.Root), int64(idx), tlog.RecordHash(entries[idx].Data)); err != nil {
			t.Fatalf("tlog refuses the proof of %d: %v", idx, err)
		}
		e, err := c.Entry(t.Context(), p, cp.Size)
		if err != nil || string(e) != string(entries[idx].Data) {
			t.Fatalf("Entry(%d) = %q, %v", idx, e, err)
		}
		text := p.Format()
		if !strings.HasPrefix(text, fmt.Sprintf("c2sp.org/tlog-proof@v1\nindex %d\n", idx)) || !strings.HasSuffix(text, string(msg)) {
			t.Fatalf("proof text:\n%s", text)
		}
		// A proof of another leaf does not verify.
		p.LeafHash[0] ^= 1
		if err := c.VerifyProof(p); !errors.Is(err, auditclient.ErrVerification) {
			t.Fatalf("a wrong leaf verified: %v", err)
		}
	}
	if _, err := c.Prove(t.Context(), cp, msg, 700); err == nil {
		t.Fatal("a proof of an entry beyond the log")
	}

	// ProveEntry checks consistency with what was remembered.
	st, _, err := c.Verify(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tl.add(t, 10)
	e, p, next, err := c.ProveEntry(t.Context(), st, 705)
	if err != nil || p.Index != 705 || next.VerifiedSize != 700 || !strings.Contains(next.Checkpoint, "\n710\n") {
		t.Fatalf("ProveEntry: %q %+v %+v %v", e, p, next, err)
	}
}
