//go:build linux

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// BenchmarkMigrateCosign migrates a repository of many signed tags (10,000;
// SIGNET_BENCH_MIGRATE_TAGS changes it), each its own image, to cosign
// signatures in both forms, on the real docker-registry (or the registry at
// host:port SIGNET_BENCH_REGISTRY names, over plain HTTP) and on
// go-containerregistry's in-process registry, with the trust data on an
// in-process signet-server. One iteration is one whole migration (run with
// -benchtime 1x); it reports the seconds it took, digests signed per second,
// requests sent to the registry per digest, and the seconds (and requests)
// of a second run, which finds everything signed.
// SIGNET_BENCH_MIGRATE_WORKERS sets --workers. Setting up
// (pushing the images, publishing the trust data) is not timed.
//
//	go test -run '^$' -bench MigrateCosign -benchtime 1x ./internal/cli/
func BenchmarkMigrateCosign(b *testing.B) {
	n := 10000
	if v := os.Getenv("SIGNET_BENCH_MIGRATE_TAGS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("SIGNET_BENCH_MIGRATE_TAGS=%q", v)
		}
	}
	srv := inproc.StartServer(b, inproc.ServerOptions{LogLevel: "info"})
	counter := &requestCounter{}
	defer func(old func(http.RoundTripper) http.RoundTripper) { migrateTransport = old }(migrateTransport)
	migrateTransport = func(rt http.RoundTripper) http.RoundTripper { counter.base = rt; return counter }
	for _, kind := range []string{"docker-registry", "ggcr"} {
		b.Run(kind, func(b *testing.B) {
			var host string
			regCPU := func() time.Duration { return 0 } // CPU time of a registry in another process
			if kind == "ggcr" {
				hs := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
				b.Cleanup(hs.Close)
				host = strings.TrimPrefix(hs.URL, "http://")
			} else if h := os.Getenv("SIGNET_BENCH_REGISTRY"); h != "" {
				host = h // a registry of the caller's (its CPU time is not counted)
			} else {
				reg := e2etest.StartRegistry(b, "")
				host = reg.Host
				regCPU = func() time.Duration { return processCPU(b, reg.Proc.Cmd.Process.Pid) }
			}
			dir := b.TempDir()
			gun := host + "/bench/app"
			setup := time.Now()
			digests := pushImages(b, host, "bench/app", n)
			publishTargets(b, srv, gun, digests)
			b.Logf("%s: %d images pushed and signed in DCT in %v", kind, n, time.Since(setup).Round(time.Millisecond))
			env := benchEnv(b, dir, srv)
			for b.Loop() {
				counter.reset()
				start, cpu0, reg0 := time.Now(), selfCPU(b), regCPU()
				benchMigrate(b, env, gun, n, migrateSigned)
				secs := time.Since(start).Seconds()
				cpu := (selfCPU(b) - cpu0 + regCPU() - reg0).Seconds()
				total, kinds := counter.reset()
				b.ReportMetric(float64(total)/float64(n), "requests/digest")
				b.Logf("%s: requests per digest, signing: %s", kind, perDigest(kinds, n))
				b.ReportMetric(secs, "s/migration")
				b.ReportMetric(float64(n)/secs, "digests/s")
				b.ReportMetric(cpu, "cpu-s/migration")
				start = time.Now()
				benchMigrate(b, env, gun, n, migrateExisting)
				b.ReportMetric(time.Since(start).Seconds(), "s/rerun")
				total, kinds = counter.reset()
				b.ReportMetric(float64(total)/float64(n), "requests/digest-rerun")
				b.Logf("%s: requests per digest, second run: %s", kind, perDigest(kinds, n))
				b.Logf("%s: %d digests signed in %.1fs wall, %.1f CPU-seconds (this process and the registry; %d cores, load average %s)",
					kind, n, secs, cpu, runtime.NumCPU(), loadAverage())
			}
		})
	}
}

// requestCounter counts the requests a migration sends to the registry, by
// method and kind of resource.
type requestCounter struct {
	base  http.RoundTripper
	mu    sync.Mutex
	kinds map[string]int
}

func (c *requestCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	kind := "other"
	for _, k := range []string{"/blobs/uploads/", "/blobs/", "/manifests/", "/referrers/"} {
		if strings.Contains(req.URL.Path, k) {
			kind = strings.Trim(k, "/")
			break
		}
	}
	c.mu.Lock()
	if c.kinds == nil {
		c.kinds = map[string]int{}
	}
	c.kinds[req.Method+" "+kind]++
	c.mu.Unlock()
	return c.base.RoundTrip(req)
}

// reset returns the counts so far and starts again.
func (c *requestCounter) reset() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kinds, total := c.kinds, 0
	for _, n := range kinds {
		total += n
	}
	c.kinds = nil
	return total, kinds
}

// perDigest describes counts of requests per digest.
func perDigest(kinds map[string]int, n int) string {
	var parts []string
	total := 0
	for _, k := range sortedKeys(kinds) {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, float64(kinds[k])/float64(n)))
		total += kinds[k]
	}
	return fmt.Sprintf("%.2f in all (%s)", float64(total)/float64(n), strings.Join(parts, ", "))
}

// selfCPU is the CPU time this process has used (user and system).
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the CPU time another process has used, from /proc.
func processCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which may hold spaces): utime and
	// stime are the 12th and 13th, in clock ticks (100 per second).
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// pushImages pushes n small images, each its own manifest (one config and
// one layer shared by all, an annotation apart), tagged t00000…, and
// returns their descriptors in tag order.
func pushImages(b *testing.B, host, path string, n int) []registry.Descriptor {
	b.Helper()
	ctx := context.Background()
	repo := (&registry.Client{Keychain: registry.Anonymous}).Repository(registry.Reference{Registry: host, Repository: path}, "push,pull")
	layer := []byte("one layer for every benchmark image\n")
	ld, err := repo.PutBlob(ctx, layer)
	if err != nil {
		b.Fatal(err)
	}
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, ld))
	cd, err := repo.PutBlob(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]registry.Descriptor, n)
	errs := make(chan error, 8)
	sem := make(chan struct{}, 8)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			man := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
				`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%d,"digest":%q},`+
				`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":%d,"digest":%q}],"annotations":{"n":"%d"}}`,
				len(cfg), cd, len(layer), ld, i)
			d, _, err := repo.PutManifest(ctx, fmt.Sprintf("t%05d", i), registry.MediaTypeOCIManifest, []byte(man))
			if err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
			out[i] = d
		}()
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	return out
}

// publishTargets publishes a repository whose targets role signs every
// image under its tag, with the server's timestamp key.
func publishTargets(b *testing.B, srv *inproc.Server, gun string, digests []registry.Descriptor) {
	b.Helper()
	ctx := context.Background()
	remote, err := client.NewRemote(srv.URL, srv.Client, tuf.GUN(gun))
	if err != nil {
		b.Fatal(err)
	}
	tsKey, err := remote.GetKey(ctx, tuf.RoleTimestamp)
	if err != nil {
		b.Fatal(err)
	}
	r := tuftest.NewRepo(b, gun, time.Now())
	r.SetRoleKeys(tuf.RoleTimestamp, tuftest.Key{Key: tsKey})
	for i, d := range digests {
		r.Targets[tuf.RoleTargets].Targets[fmt.Sprintf("t%05d", i)] = tuf.FileMeta{Length: d.Size, Hashes: map[string][]byte{"sha256": d.SHA256()}}
	}
	r.Sign(tuf.RoleRoot)
	r.Sign(tuf.RoleTargets)
	r.SignSnapshot()
	if err := remote.Publish(ctx, map[string][]byte{
		tuf.RoleRoot: r.Signed[tuf.RoleRoot], tuf.RoleTargets: r.Signed[tuf.RoleTargets], tuf.RoleSnapshot: r.Signed[tuf.RoleSnapshot],
	}); err != nil {
		b.Fatal(err)
	}
}

// benchEnv is a user's environment for the trust server and the cosign
// fixture key.
func benchEnv(b *testing.B, dir string, srv *inproc.Server) map[string]string {
	b.Helper()
	cfg := filepath.Join(dir, "docker")
	host := strings.TrimPrefix(srv.URL, "https://")
	if err := os.MkdirAll(filepath.Join(cfg, "tls", host), 0o700); err != nil {
		b.Fatal(err)
	}
	ca, _ := os.ReadFile(srv.CAFile)
	if err := os.WriteFile(filepath.Join(cfg, "tls", host, "ca.crt"), ca, 0o644); err != nil {
		b.Fatal(err)
	}
	key, _ := os.ReadFile(cosignFixtures + "cosign.key")
	if err := os.WriteFile(filepath.Join(dir, "cosign.key"), key, 0o600); err != nil {
		b.Fatal(err)
	}
	return map[string]string{"HOME": dir, "DOCKER_CONFIG": cfg, "DOCKER_CONTENT_TRUST_SERVER": srv.URL, envCosignPassword: "test", "KEY": filepath.Join(dir, "cosign.key")}
}

// benchMigrate runs one migration and checks that every tag got result.
func benchMigrate(b *testing.B, env map[string]string, gun string, n int, result string) {
	b.Helper()
	var out, errOut bytes.Buffer
	args := []string{"-o", "json", "migrate", "cosign", gun, "--key", env["KEY"]}
	if w := os.Getenv("SIGNET_BENCH_MIGRATE_WORKERS"); w != "" {
		args = append(args, "--workers", w)
	}
	code := Main(b.Context(), args,
		Env{Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errOut})
	if code != 0 {
		b.Fatalf("migrate: exit %d\n%s", code, errOut.String())
	}
	var rep migrateReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		b.Fatal(err)
	}
	if rep.Summary[result] != n {
		b.Fatalf("migrate: %v, want %d %s", rep.Summary, n, result)
	}
}
