package replicas

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/tufhttp"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/store/sqlstore"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// propagationBound is how soon every replica must serve a version another
// replica accepted. Replicas run with the default cache_max_stale (30 s),
// so meeting it shows the invalidation itself arrived.
const propagationBound = 2 * time.Second

// replica is one signet-server process.
type replica struct {
	name string
	*e2etest.Server
}

// startReplicas starts n signet-server processes at once on dbURL, each
// with a data directory of its own, the same key passphrase and the same
// certificate, and waits until all listen.
func startReplicas(t *testing.T, n int, dbURL string) []*replica {
	t.Helper()
	dir := t.TempDir()
	caFile, certFile, keyFile := e2etest.ServerPKI(t, filepath.Join(dir, "pki"))
	rs := make([]*replica, n)
	for i := range rs {
		name := fmt.Sprintf("replica %d", i)
		rs[i] = &replica{name, e2etest.Spawn(t, e2etest.Options{
			Name: name, DataDir: filepath.Join(dir, fmt.Sprintf("replica%d", i)), CAFile: caFile,
			Flags:         []string{"--db", dbURL, "--tls-cert", certFile, "--tls-key", keyFile},
			Env:           []string{"SIGNET_KEY_PASSPHRASE=replicas test passphrase"},
			ClientTimeout: 20 * time.Second, MaxIdleConns: 8, LogTailOnFailure: true,
		})}
	}
	for _, r := range rs {
		r.WaitListening(60 * time.Second)
	}
	return rs
}

// do sends one request to r (tufhttp.Do).
func (r *replica) do(ctx context.Context, method, path string, body []byte, contentType string) (int, []byte, error) {
	resp, err := tufhttp.Do(ctx, r.Client, method, r.Base+path, body, contentType)
	return resp.Status, resp.Body, err
}

func (r *replica) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	status, body, err := r.do(t.Context(), http.MethodGet, path, nil, "")
	if err != nil {
		t.Fatalf("%s: GET %s: %v", r.name, path, err)
	}
	return status, body
}

// verify downloads gun from r as the notary client does and verifies it
// (tufhttp.VerifyRepo).
func verify(t *testing.T, r *replica, gun string) *trust.Repo {
	t.Helper()
	return tufhttp.VerifyRepo(t, r.Client, r.Base, gun)
}

// propagation polls every replica at once until each serves timestamp
// version want, failing beyond propagationBound after since, and returns
// how long the slowest took.
func propagation(t *testing.T, rs []*replica, base string, want int, since time.Time) time.Duration {
	t.Helper()
	took := make([]time.Duration, len(rs))
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() {
			for {
				status, body, err := r.do(t.Context(), http.MethodGet, base+"timestamp.json", nil, "")
				if err != nil {
					errs[i] = err
					return
				}
				if status == 200 {
					if m, err := tuf.ParseTimestamp(body); err == nil && int(m.Signed.Version) == want {
						took[i] = time.Since(since)
						return
					}
				}
				if d := time.Since(since); d > propagationBound {
					errs[i] = fmt.Errorf("%s still serves %d %.200s %v after timestamp v%d was accepted", r.name, status, body, d, want)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	var worst time.Duration
	for i := range rs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		worst = max(worst, took[i])
	}
	return worst
}

// TestThreeReplicas publishes to one repository through three replicas at
// once, round after round: each round exactly one publish is accepted and
// the others get 400 VERSION, the accepted one is stored whole, and every
// replica serves its timestamp within propagationBound.
func TestThreeReplicas(t *testing.T) {
	dbURL := e2etest.PostgresDB(t, "signet_replicas_")
	rs := startReplicas(t, 3, dbURL)
	for _, r := range rs {
		if status, body := r.get(t, "/_signet/ready"); status != 200 || string(body) != "{}" {
			t.Fatalf("%s: /_signet/ready: %d %s", r.name, status, body)
		}
	}

	const gun = "example.com/replicas/app"
	base := "/v2/" + gun + "/_trust/tuf/"
	// The timestamp key comes from one replica, the first publish goes
	// through another: keys and metadata live in the shared database.
	status, body := rs[0].get(t, base+"timestamp.key")
	if status != 200 {
		t.Fatalf("GET timestamp.key: %d %s", status, body)
	}
	var tsKey keys.PublicKey
	if err := json.Unmarshal(body, &tsKey); err != nil {
		t.Fatal(err)
	}
	repo := tuftest.NewRepo(t, gun, time.Now())
	repo.SetRoleKeys(tuf.RoleTimestamp, tuftest.Key{Key: &tsKey})
	repo.AddTarget(tuf.RoleTargets, "v1", []byte("v1"))
	repo.SignAll()
	b, ct := tufhttp.Upload(tufhttp.Part{Role: tuf.RoleRoot, Data: repo.Signed[tuf.RoleRoot]}, tufhttp.Part{Role: tuf.RoleTargets, Data: repo.Signed[tuf.RoleTargets]}, tufhttp.Part{Role: tuf.RoleSnapshot, Data: repo.Signed[tuf.RoleSnapshot]})
	if status, body, err := rs[1].do(t.Context(), http.MethodPost, base, b, ct); err != nil || status != 200 {
		t.Fatalf("first publish: %d %s %v", status, body, err)
	}
	for _, r := range rs {
		verify(t, r, gun)
	}

	const rounds = 8
	var (
		worst time.Duration
		wins  = make([]int, len(rs))
	)
	for round := 2; round <= rounds+1; round++ {
		// Every replica has the current version in memory before the race,
		// so what it serves after depends on the invalidation.
		for _, r := range rs {
			verify(t, r, gun)
		}
		// Each replica gets its own publish of targets and snapshot version
		// round, differing in one target.
		type attempt struct {
			targets, snapshot []byte
			status            int
			body              []byte
			err               error
			at                time.Time
		}
		attempts := make([]attempt, len(rs))
		var wg sync.WaitGroup
		start := make(chan struct{})
		repo.Bump(tuf.RoleTargets)
		repo.Bump(tuf.RoleSnapshot)
		targetName := func(i int) string { return fmt.Sprintf("v%d through replica %d", round, i) }
		for i, r := range rs {
			var a attempt
			repo.AddTarget(tuf.RoleTargets, targetName(i), []byte(targetName(i)))
			a.targets = repo.Sign(tuf.RoleTargets)
			a.snapshot = repo.SignSnapshot()
			delete(repo.Targets[tuf.RoleTargets].Targets, targetName(i))
			b, ct := tufhttp.Upload(tufhttp.Part{Role: tuf.RoleTargets, Data: a.targets}, tufhttp.Part{Role: tuf.RoleSnapshot, Data: a.snapshot})
			attempts[i] = a
			wg.Go(func() {
				<-start
				at := &attempts[i]
				at.status, at.body, at.err = r.do(t.Context(), http.MethodPost, base, b, ct)
				at.at = time.Now()
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, a := range attempts {
			switch {
			case a.err != nil:
				t.Fatalf("round %d, %s: %v", round, rs[i].name, a.err)
			case a.status == 200:
				if winner >= 0 {
					t.Fatalf("round %d: %s and %s both accepted version %d", round, rs[winner].name, rs[i].name, round)
				}
				winner = i
			case a.status == 400 && tufhttp.ErrorCode(a.body) == "VERSION":
			default:
				t.Fatalf("round %d, %s: %d %s, want 200 or 400 VERSION", round, rs[i].name, a.status, a.body)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no publish accepted", round)
		}
		w := attempts[winner]

		wins[winner]++
		if d := propagation(t, rs, base, round, w.at); d > worst {
			worst = d
		}
		for _, r := range rs {
			v := verify(t, r, gun)
			if got := v.Timestamp().Signed.Version; got != round {
				t.Fatalf("round %d: %s verified timestamp v%d", round, r.name, got)
			}
			status, body := r.get(t, base+"targets.json")
			if status != 200 || !bytes.Equal(body, w.targets) {
				t.Fatalf("round %d: %s serves targets that are not the accepted publish's", round, r.name)
			}
			status, body = r.get(t, fmt.Sprintf("%s%d.snapshot.json", base, round))
			if status != 200 || !bytes.Equal(body, w.snapshot) {
				t.Fatalf("round %d: %s: snapshot v%d is not the accepted publish's", round, r.name, round)
			}
		}
		// The losers stored nothing.
		for i, a := range attempts {
			if i == winner {
				continue
			}
			sum := tuf.NewFileMeta(a.targets).Hashes["sha256"]
			if status, _ := rs[i].get(t, fmt.Sprintf("%stargets.%x.json", base, sum)); status != 404 {
				t.Fatalf("round %d: the refused targets of %s is stored (%d)", round, rs[i].name, status)
			}
		}
		// The client goes on from the accepted publish.
		repo.AddTarget(tuf.RoleTargets, targetName(winner), []byte(targetName(winner)))
		repo.Signed[tuf.RoleTargets], repo.Signed[tuf.RoleSnapshot] = w.targets, w.snapshot
	}
	t.Logf("propagation: every replica served each accepted version within %v of the 200 (bound %v); wins per replica %v",
		worst.Round(time.Microsecond), propagationBound, wins)

	// Cut every replica's listening connection, as a database failover or
	// network blip would, and publish at once: notifications sent while a
	// listener was away are lost, so each must drop its whole cache when it
	// reconnects, and still serve the new version within the bound.
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.ExecContext(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE application_name = $1 AND datname = current_database()`, sqlstore.ListenerApplicationName)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != int64(len(rs)) {
		t.Fatalf("terminated %d listening connections, want %d", n, len(rs))
	}
	next := rounds + 2
	repo.Bump(tuf.RoleTargets)
	repo.Bump(tuf.RoleSnapshot)
	repo.AddTarget(tuf.RoleTargets, "after the cut", []byte("after the cut"))
	b, ct = tufhttp.Upload(tufhttp.Part{Role: tuf.RoleTargets, Data: repo.Sign(tuf.RoleTargets)}, tufhttp.Part{Role: tuf.RoleSnapshot, Data: repo.SignSnapshot()})
	status, body, err = rs[0].do(t.Context(), http.MethodPost, base, b, ct)
	if err != nil || status != 200 {
		t.Fatalf("publish after the cut: %d %s %v", status, body, err)
	}
	d := propagation(t, rs, base, next, time.Now())
	t.Logf("propagation with every listener cut at the time of the write: %v", d.Round(time.Microsecond))

	// The changefeed has one record per accepted timestamp, in order.
	status, body = rs[2].get(t, "/v2/"+gun+"/_trust/changefeed?change_id=0&records=100")
	if status != 200 {
		t.Fatalf("changefeed: %d %s", status, body)
	}
	var feed struct {
		Records []struct{ Version int } `json:"records"`
	}
	if err := json.Unmarshal(body, &feed); err != nil {
		t.Fatal(err)
	}
	if len(feed.Records) != next {
		t.Fatalf("changefeed has %d records, want %d: %s", len(feed.Records), next, body)
	}
	for i, c := range feed.Records {
		if c.Version != i+1 {
			t.Fatalf("changefeed record %d has version %d: %s", i, c.Version, body)
		}
	}
}
