package audit_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/audit/audittest"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

// The crash test re-runs this test binary as a child that appends in a
// storm and prints "ack <leaf hash>" for every append acknowledged.
const (
	envCrashDB  = "SIGNET_AUDIT_CRASH_DB"
	envCrashKey = "SIGNET_AUDIT_CRASH_KEY"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(envCrashDB); url != "" {
		os.Exit(crashChild(url, os.Getenv(envCrashKey)))
	}
	os.Exit(m.Run())
}

// crashChild appends until it is killed.
func crashChild(url, seedHex string) int {
	ctx := context.Background()
	seed, err := hex.DecodeString(seedHex)
	if err != nil || len(seed) != ed25519.SeedSize {
		fmt.Fprintln(os.Stderr, "bad key")
		return 2
	}
	s, err := sqlstore.Open(ctx, url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	l, err := audit.New(audit.Config{Store: s.AuditLog(), Origin: origin, Signer: ed25519.NewKeyFromSeed(seed), Poll: 20 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	go l.Run(ctx)
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for w := range 16 {
		go func() {
			for i := 0; ; i++ {
				a, err := l.Append(ctx, event(w*1_000_000+i))
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %s\n", a.LeafHash.Hex())
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestCrashDuringStorm kills -9 a process appending in a storm, restarts
// the log on the same database, and checks that the log verifies and that
// every acknowledged append is in it.
func TestCrashDuringStorm(t *testing.T) {
	for _, db := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"SQLite", sqliteURL},
		{"Postgres", func(t testing.TB) string { return e2etest.PostgresDB(t, "signet_audit_crash_") }},
	} {
		t.Run(db.name, func(t *testing.T) {
			url := db.url(t)
			key := newKey(t)
			// Several kills in a row on the same log.
			acked := map[string]bool{}
			for round := range 3 {
				for h := range crashRound(t, url, key) {
					acked[h] = true
				}
				t.Logf("round %d: %d acknowledged appends so far", round, len(acked))
			}
			if len(acked) < 100 {
				t.Fatalf("only %d appends acknowledged before the kills", len(acked))
			}

			s := openStore(t, url).AuditLog()
			l := newLog(t, s, key)
			run(t, l)
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			for {
				st, err := s.State(ctx)
				if err != nil {
					t.Fatal(err)
				}
				n, err := s.PendingCount(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 && st.Checkpoint != nil && st.CheckpointSize == st.Size {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("the restarted log did not integrate: %d pending, state %d/%d", n, st.CheckpointSize, st.Size)
				case <-time.After(20 * time.Millisecond):
				}
			}
			if err := l.Check(t.Context()); err != nil {
				t.Fatalf("self-check after the crashes: %v", err)
			}
			srv := serve(t, s, l.VerifierKey())
			r, err := audittest.Verify(t.Context(), srv.Client(), srv.URL+"/audit/", l.VerifierKey(), nil)
			if err != nil {
				t.Fatalf("outside verifier after the crashes: %v", err)
			}
			inLog := map[string]int{}
			for _, e := range r.Entries {
				inLog[audit.LeafHash(e).Hex()]++
			}
			for h := range acked {
				if inLog[h] != 1 {
					t.Fatalf("acknowledged entry %s is in the log %d times", h, inLog[h])
				}
			}
			t.Logf("%d entries in the log, %d acknowledged", r.Size, len(acked))
		})
	}
}

// crashRound runs the child until it has acknowledged some appends, kills
// it with SIGKILL and returns the leaf hashes it acknowledged.
func crashRound(t *testing.T, url string, key ed25519.PrivateKey) map[string]bool {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrashDB+"="+url, envCrashKey+"="+hex.EncodeToString(key.Seed()))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deadline := time.After(20 * time.Second)
	killAt := time.Time{}
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				done = true
				break
			}
			if h, ok := strings.CutPrefix(l, "ack "); ok && len(h) == 64 {
				acked[h] = true
			}
			if len(acked) == 300 && killAt.IsZero() {
				// Kill in the middle of the storm, a little later.
				killAt = time.Now().Add(300 * time.Millisecond)
				time.AfterFunc(300*time.Millisecond, func() { cmd.Process.Kill() })
			}
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("the child acknowledged only %d appends in 20 s; stderr: %s", len(acked), stderr.String())
		}
	}
	err = cmd.Wait()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("child ended with %v, want killed; stderr: %s", err, stderr.String())
	}
	return acked
}
