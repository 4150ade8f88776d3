package client_test

// Regression tests for the client findings of issue 10 (an adversarial
// review): a server walking the client through root versions forever, and
// a timestamp declaring a snapshot of a terabyte. Each runs against the
// malicious trust server of package tuftest.

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// rootWalker answers root.json with newest and every n.root.json with
// intermediate(n), counting the requests.
type rootWalker struct {
	gun          string
	newest       []byte
	intermediate func(n int) []byte
	requests     int
}

func (w *rootWalker) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.requests++
	name := strings.TrimPrefix(r.URL.Path, notaryapi.TUFPath(w.gun))
	if name == "root.json" {
		_, _ = rw.Write(w.newest)
		return
	}
	n, err := strconv.Atoi(strings.TrimSuffix(name, ".root.json"))
	if err != nil {
		http.NotFound(rw, r)
		return
	}
	_, _ = rw.Write(w.intermediate(n))
}

// unsignedRoot is the repository's root at version v, with no signatures.
func unsignedRoot(e *attackEnv, v int) []byte {
	saved := e.repo.Root.Version
	e.repo.Root.Version = v
	b := tuftest.StripSignatures(e.t, e.repo.Sign(tuf.RoleRoot))
	e.repo.Root.Version = saved
	e.repo.Sign(tuf.RoleRoot)
	return b
}

// breakTimestamp makes the client look for a newer root: the timestamp is
// signed by a key the trusted root does not list.
func breakTimestamp(e *attackEnv) {
	e.repo.Bump(tuf.RoleTimestamp)
	e.repo.SignTimestamp()
	e.srv.Serve(tuf.RoleTimestamp, e.repo.Sign(tuf.RoleTimestamp, tuftest.NewKey(e.t)))
}

// Finding 6 of issue 10: the client walked root versions forever.
func TestAttackEndlessRootWalk(t *testing.T) {
	t.Run("unsigned root.json claiming version 2^40, the trusted root for every n.root.json", func(t *testing.T) {
		e := newAttackEnv(t)
		e.mustUpdate()
		trusted := e.repo.Signed[tuf.RoleRoot]
		w := &rootWalker{gun: attackGUN, newest: unsignedRoot(e, 1<<40), intermediate: func(int) []byte { return trusted }}
		e.srv.Override(tuf.RoleRoot, w)
		breakTimestamp(e)
		e.keepsCache(func() {
			_, err := e.update()
			if !errors.Is(err, client.ErrTooManyRotations) {
				t.Fatalf("err = %v, want ErrTooManyRotations", err)
			}
		})
		if w.requests != 1 {
			t.Errorf("the client asked for %d root files; only root.json is needed to refuse", w.requests)
		}
	})
	t.Run("root.json claiming a version within reach, the trusted root for every n.root.json", func(t *testing.T) {
		e := newAttackEnv(t)
		e.mustUpdate()
		trusted := e.repo.Signed[tuf.RoleRoot]
		w := &rootWalker{gun: attackGUN, newest: unsignedRoot(e, 200), intermediate: func(int) []byte { return trusted }}
		e.srv.Override(tuf.RoleRoot, w)
		breakTimestamp(e)
		e.keepsCache(func() {
			_, err := e.update()
			if !errors.Is(err, trust.ErrRollback) || !strings.Contains(err.Error(), "root version 2 was asked for, the server sent version 1") {
				t.Fatalf("err = %v, want the first intermediate root refused", err)
			}
		})
		if w.requests != 2 {
			t.Errorf("the client asked for %d root files; it should stop at 2.root.json", w.requests)
		}
	})
	t.Run("every n.root.json answered with a later version", func(t *testing.T) {
		e := newAttackEnv(t)
		e.mustUpdate()
		w := &rootWalker{gun: attackGUN, newest: unsignedRoot(e, 100), intermediate: func(n int) []byte { return unsignedRoot(e, n+1) }}
		e.srv.Override(tuf.RoleRoot, w)
		breakTimestamp(e)
		e.keepsCache(func() {
			if _, err := e.update(); !errors.Is(err, trust.ErrRollback) {
				t.Fatalf("err = %v, want the mismatched version refused", err)
			}
		})
		if w.requests != 2 {
			t.Errorf("the client asked for %d root files; it should stop at 2.root.json", w.requests)
		}
	})
	t.Run("an update ends at the reader's deadline, whatever the caller's", func(t *testing.T) {
		e := newAttackEnv(t)
		e.srv.Override(tuf.RoleTimestamp, tuftest.Trickle{Interval: 50 * time.Millisecond})
		rd := e.reader()
		rd.Timeout = 300 * time.Millisecond
		start := time.Now()
		_, err := rd.Update(context.Background())
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Fatalf("trickle: %v after %v", err, time.Since(start))
		}
	})
}

// Finding 7 of issue 10: the client read whatever length the timestamp
// declared for the snapshot (1 TiB grew it to 4 GB).
func TestAttackDeclaredLengthBeyondTheCap(t *testing.T) {
	for _, tt := range []struct {
		name   string
		role   string
		length int64
	}{
		{"timestamp listing a 1 TiB snapshot", tuf.RoleSnapshot, 1 << 40},
		{"timestamp listing a snapshot just over the cap", tuf.RoleSnapshot, client.MaxMetadataSize + 1},
		{"snapshot listing a 1 TiB targets", tuf.RoleTargets, 1 << 40},
		{"snapshot listing a 1 TiB delegation", "targets/releases", 1 << 40},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newAttackEnv(t)
			e.mustUpdate()
			// The attacker holds the online keys (the server's).
			h := &tuftest.Endless{Prefix: []byte(`{"signed":`)}
			e.srv.Override(tt.role, h)
			e.repo.Bump(tuf.RoleSnapshot)
			e.repo.SignSnapshot()
			if tt.role != tuf.RoleSnapshot {
				fm := e.repo.Snapshot.Meta[tt.role]
				fm.Length = tt.length
				e.repo.Snapshot.Meta[tt.role] = fm
				e.repo.Sign(tuf.RoleSnapshot)
			}
			e.repo.Bump(tuf.RoleTimestamp)
			e.repo.SignTimestamp()
			if tt.role == tuf.RoleSnapshot {
				fm := e.repo.Timestamp.Meta[tuf.RoleSnapshot]
				fm.Length = tt.length
				e.repo.Timestamp.Meta[tuf.RoleSnapshot] = fm
				e.repo.Sign(tuf.RoleTimestamp)
			}
			e.srv.Publish(e.repo)
			e.keepsCache(func() {
				_, err := e.update()
				if !errors.Is(err, client.ErrMaliciousServer) || !strings.Contains(err.Error(), "more than the 104857600 this client reads") {
					t.Fatalf("err = %v, want the declared length refused", err)
				}
			})
			if h.Sent() != 0 {
				t.Errorf("the client downloaded %d bytes of a file it must refuse unread", h.Sent())
			}
		})
	}
}
