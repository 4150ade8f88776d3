package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/audit/audittest"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

const origin = "signet.test/audit"

func newKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func openStore(t testing.TB, url string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sqliteURL(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "signet.db") }

func newLog(t testing.TB, s audit.Store, key ed25519.PrivateKey, opts ...func(*audit.Config)) *audit.Log {
	t.Helper()
	cfg := audit.Config{Store: s, Origin: origin, Signer: key, Poll: 20 * time.Millisecond, LeaseTTL: time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	l, err := audit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// run runs the log's integrator until the test ends.
func run(t testing.TB, l *audit.Log) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// serve serves the read API of s.
func serve(t testing.TB, s audit.Store, vkey string) *httptest.Server {
	h, err := audit.NewHandler(audit.HandlerConfig{Store: s, VerifierKey: vkey, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/audit", h))
	t.Cleanup(srv.Close)
	return srv
}

func event(i int) audit.Event {
	return audit.Event{
		Type:    audit.AdmissionDeny,
		Actor:   audit.Actor{Kind: audit.ActorUser, Name: "webhook"},
		Subject: audit.Subject{Image: fmt.Sprintf("registry.test/app:%d", i), Namespace: "prod"},
		Reason:  "unsigned",
	}
}

// appendN appends n events from 8 goroutines and returns their entries.
func appendN(t testing.TB, l *audit.Log, n int) []audit.Appended {
	t.Helper()
	out := make([]audit.Appended, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				a, err := l.Append(t.Context(), event(i))
				if err != nil {
					errs <- err
					return
				}
				out[i] = a
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

// awaitAll waits until a checkpoint covers every appended entry.
func awaitAll(t testing.TB, l *audit.Log, as []audit.Appended) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, a := range as {
		if _, _, err := l.Await(ctx, a.ID); err != nil {
			t.Fatalf("Await(%d): %v", a.ID, err)
		}
	}
}

func TestLogServesAVerifiableLog(t *testing.T) {
	for _, db := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"SQLite", sqliteURL},
		{"Postgres", func(t testing.TB) string { return e2etest.PostgresDB(t, "signet_audit_") }},
	} {
		t.Run(db.name, func(t *testing.T) {
			s := openStore(t, db.url(t)).AuditLog()
			key := newKey(t)
			l := newLog(t, s, key)
			run(t, l)
			srv := serve(t, s, l.VerifierKey())
			prefix := srv.URL + "/audit/"

			// The empty log has a signed checkpoint soon after start.
			var first *audittest.Result
			deadline := time.Now().Add(5 * time.Second)
			for {
				r, err := audittest.Verify(t.Context(), srv.Client(), prefix, l.VerifierKey(), nil)
				if err == nil {
					first = r
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no verifiable empty log: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if first.Size != 0 {
				t.Fatalf("first checkpoint of %d entries", first.Size)
			}

			var remembered []byte = first.Checkpoint
			total := 0
			for _, n := range []int{1, 254, 1, 300, 70} { // across tile boundaries
				as := appendN(t, l, n)
				total += n
				start := time.Now()
				awaitAll(t, l, as)
				// The time to a checkpoint is measured by the benchmark
				// (docs/benchmarks.md), not asserted: machines are shared.
				t.Logf("%d appends: checkpoint %v after they returned", n, time.Since(start))
				r, err := audittest.Verify(t.Context(), srv.Client(), prefix, l.VerifierKey(), remembered)
				if err != nil {
					t.Fatalf("after %d entries: %v", total, err)
				}
				if r.Size != int64(total) {
					t.Fatalf("checkpoint of %d entries, want %d", r.Size, total)
				}
				got := map[string]bool{}
				for _, e := range r.Entries {
					got[string(e)] = true
				}
				for _, a := range as {
					if !got[string(a.Entry)] {
						t.Fatalf("appended entry %s is not in the log", a.Entry)
					}
				}
				remembered = r.Checkpoint
			}
			if err := l.Check(t.Context()); err != nil {
				t.Fatalf("self-check: %v", err)
			}
			if err := l.Ready(t.Context()); err != nil {
				t.Fatalf("Ready: %v", err)
			}
			st := l.Status()
			if !st.Leader || st.Integrated != int64(total) || st.CheckpointSize != uint64(total) {
				t.Fatalf("status %+v", st)
			}
		})
	}
}
