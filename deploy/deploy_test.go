package deploy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// moduleRoot is the repository root: the build context of the image.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("no go.mod above deploy/: %v", err)
	}
	return dir
}

// instruction is one Dockerfile instruction.
type instruction struct {
	cmd   string // upper case
	flags map[string]string
	args  string // the rest of the line, continuation lines joined
}

// stage is one FROM … section.
type stage struct {
	from, name string
	ins        []instruction
}

// parseDockerfile reads the instructions the file uses: comments and blank
// lines skipped, backslash continuations joined, --flag=value options of
// COPY and HEALTHCHECK split off, ARG defaults substituted into FROM.
func parseDockerfile(t *testing.T, b []byte) []stage {
	t.Helper()
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile ends in a continuation: %q", cur.String())
	}
	args := map[string]string{}
	var stages []stage
	for _, l := range lines {
		cmd, rest, _ := strings.Cut(l, " ")
		in := instruction{cmd: strings.ToUpper(cmd), flags: map[string]string{}}
		rest = strings.TrimSpace(rest)
		for strings.HasPrefix(rest, "--") {
			var f string
			f, rest, _ = strings.Cut(rest, " ")
			k, v, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
			in.flags[k] = v
			rest = strings.TrimSpace(rest)
		}
		in.args = rest
		switch in.cmd {
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			args[k] = v
			if len(stages) == 0 {
				continue
			}
		case "FROM":
			from := os.Expand(rest, func(k string) string { return args[k] })
			img, name, _ := strings.Cut(from, " AS ")
			stages = append(stages, stage{from: strings.TrimSpace(img), name: strings.TrimSpace(name)})
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("%s before FROM", in.cmd)
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	return stages
}

// execForm reads a JSON array argument (CMD, ENTRYPOINT, VOLUME, RUN's
// exec form).
func execForm(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("%q is not the exec form (a JSON array): %v", s, err)
	}
	return out
}

// dockerignore reads the context's .dockerignore patterns.
func dockerignore(t *testing.T, root string) []string {
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var pats []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			pats = append(pats, strings.TrimSuffix(l, "/"))
		}
	}
	return pats
}

func ignored(pats []string, rel string) bool {
	for _, p := range pats {
		if ok, _ := filepath.Match(p, rel); ok {
			return true
		}
		if ok, _ := filepath.Match(p, filepath.Base(rel)); ok && !strings.Contains(p, "/") && strings.HasPrefix(p, "*") {
			return true
		}
	}
	return false
}

// copyContext copies src (file or directory, relative to the context) to
// dst, leaving out what .dockerignore names. .git is left out too: the
// test needs no VCS revision (the first-hour test checks make build's).
func copyContext(t *testing.T, root, src, dst string, pats []string) {
	t.Helper()
	base := filepath.Join(root, src)
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." && (ignored(pats, rel) || rel == ".git") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, strings.TrimPrefix(p, base))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, _ := d.Info()
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// image is the result of running the Dockerfile's build stage here: the
// final stage's files mapped to local paths.
type image struct {
	final      stage
	files      map[string]string // path in the image → local path
	user       string
	volumes    []string
	expose     []string
	entrypoint []string
	cmd        []string
	health     []string
	healthOpts map[string]string
}

var (
	imageOnce sync.Once
	built     *image
	buildDir  string // removed by TestMain
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildImage runs the Dockerfile's build stage command by command in a
// directory standing for its file system (once per test binary) and reads
// the final stage. A failed build fails the first test that asked, and
// every later one.
func buildImage(t *testing.T) *image {
	t.Helper()
	imageOnce.Do(func() { built = doBuildImage(t) })
	if built == nil {
		t.Fatal("the image's build stage failed (see the first test that built it)")
	}
	return built
}

func doBuildImage(t *testing.T) *image {
	root := moduleRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := parseDockerfile(t, b)
	if len(stages) < 2 {
		t.Fatalf("the Dockerfile has %d stage(s); want a build stage and a final stage", len(stages))
	}
	pats := dockerignore(t, root)
	fsroot, err := os.MkdirTemp("", "signet-image-") // the build stage's file system, for every test
	if err != nil {
		t.Fatal(err)
	}
	buildDir = fsroot
	local := func(p string) string { return filepath.Join(fsroot, p) }
	byName := map[string]string{} // stage name → its fsroot (only the build stages run here)
	for _, st := range stages[:len(stages)-1] {
		if !strings.HasPrefix(st.from, "golang:") {
			t.Fatalf("build stage %q is FROM %s, want a golang image", st.name, st.from)
		}
		workdir := "/"
		env := append(os.Environ(), "HOME="+os.Getenv("HOME"))
		for _, in := range st.ins {
			switch in.cmd {
			case "WORKDIR":
				workdir = in.args
				if err := os.MkdirAll(local(workdir), 0o755); err != nil {
					t.Fatal(err)
				}
			case "ENV":
				for _, kv := range strings.Fields(in.args) {
					if !strings.Contains(kv, "=") {
						t.Fatalf("ENV %q: use KEY=VALUE", in.args)
					}
					env = append(env, kv)
				}
			case "COPY":
				f := strings.Fields(in.args)
				dst := f[len(f)-1]
				if !strings.HasPrefix(dst, "/") {
					dst = filepath.Join(workdir, dst)
				}
				for _, src := range f[:len(f)-1] {
					target := local(dst)
					if fi, err := os.Stat(filepath.Join(root, src)); err == nil && !fi.IsDir() {
						target = filepath.Join(local(dst), filepath.Base(src))
					}
					copyContext(t, root, src, target, pats)
				}
			case "RUN":
				if strings.HasPrefix(in.args, "[") {
					t.Fatalf("RUN %s: use the shell form in build stages", in.args)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
				cmd := exec.CommandContext(ctx, "sh", "-c", in.args)
				cmd.Dir = local(workdir)
				cmd.Env = env
				out, err := cmd.CombinedOutput()
				cancel()
				if err != nil {
					t.Fatalf("RUN %s (in %s): %v\n%s", in.args, workdir, err, out)
				}
				t.Logf("RUN %s: ok\n%s", in.args, out)
			default:
				t.Fatalf("build stage instruction %s is not one this test runs; teach it", in.cmd)
			}
		}
		byName[st.name] = fsroot
	}

	img := &image{final: stages[len(stages)-1], files: map[string]string{}, healthOpts: map[string]string{}}
	for _, in := range img.final.ins {
		switch in.cmd {
		case "COPY":
			f := strings.Fields(in.args)
			dst := f[len(f)-1]
			for _, src := range f[:len(f)-1] {
				var from string
				if s, ok := in.flags["from"]; ok {
					r, ok := byName[s]
					if !ok {
						t.Fatalf("COPY --from=%s: no such build stage", s)
					}
					from = filepath.Join(r, src)
				} else {
					from = filepath.Join(root, src)
				}
				if _, err := os.Stat(from); err != nil {
					t.Fatalf("COPY %s: %v", in.args, err)
				}
				target := dst
				if strings.HasSuffix(dst, "/") {
					target = dst + filepath.Base(src)
				}
				img.files[target] = from
				if c := in.flags["chown"]; c != "" {
					img.files["chown:"+target] = c
				}
			}
		case "USER":
			img.user = in.args
		case "VOLUME":
			img.volumes = execForm(t, in.args)
		case "EXPOSE":
			img.expose = strings.Fields(in.args)
		case "ENTRYPOINT":
			img.entrypoint = execForm(t, in.args)
		case "CMD":
			img.cmd = execForm(t, in.args)
		case "HEALTHCHECK":
			rest, ok := strings.CutPrefix(in.args, "CMD ")
			if !ok {
				t.Fatalf("HEALTHCHECK %s: want CMD [...]", in.args)
			}
			img.health = execForm(t, strings.TrimSpace(rest))
			img.healthOpts = in.flags
		default:
			t.Fatalf("final stage instruction %s is not one this test checks; teach it", in.cmd)
		}
	}
	return img
}

// local returns the local path of a file of the image.
func (img *image) local(t *testing.T, p string) string {
	t.Helper()
	l, ok := img.files[p]
	if !ok {
		t.Fatalf("%s is not in the image (COPY)", p)
	}
	return l
}

// checkStatic fails unless bin is a statically linked ELF executable.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: not static", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s links %v: not static", bin, libs)
	}
}

// serverConfig is the subset of signet-server's YAML the tests read.
type serverConfig struct {
	Listen        string `yaml:"listen"`
	DataDir       string `yaml:"data_dir"`
	MetricsListen string `yaml:"metrics_listen"`
}

func readServerConfig(t *testing.T, b []byte) serverConfig {
	t.Helper()
	var c serverConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// running is a signet-server process started by a test.
type running struct {
	cmd    *exec.Cmd
	out    *syncBuf
	done   chan struct{}
	listen string
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listeningRE = regexp.MustCompile(`listening on https://(\S+) `)

// startServer runs bin with args and env and waits until it listens; it is
// stopped with SIGTERM when the test ends.
func startServer(t *testing.T, bin string, env []string, args ...string) *running {
	t.Helper()
	r := &running{cmd: exec.Command(bin, args...), out: &syncBuf{}, done: make(chan struct{})}
	r.cmd.Env = env
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(40 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	deadline := time.After(60 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(r.out.String()); m != nil {
			r.listen = m[1]
			return r
		}
		select {
		case <-r.done:
			t.Fatalf("%s %v exited before listening:\n%s", bin, args, r.out)
		case <-deadline:
			t.Fatalf("%s %v did not listen within 60s:\n%s", bin, args, r.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func run(t *testing.T, env []string, name string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		code = ee.ExitCode()
	}
	return code, string(out)
}

func testEnv(home string) []string {
	return []string{"PATH=/usr/bin:/bin", "HOME=" + home, "SIGNET_KEY_PASSPHRASE=deploy-test-passphrase"}
}

// TestDockerfile runs the image's build stage here and checks the final
// stage: static binaries, a non-root user, the data directory a volume
// owned by that user, the entrypoint refusing the shipped configuration
// (every interface, no auth) with a message naming the opt-in, and the
// health check answering 0 for a server started from that configuration.
func TestDockerfile(t *testing.T) {
	img := buildImage(t)
	if f := img.final.from; f != "scratch" && !strings.Contains(f, "distroless/static") {
		t.Errorf("final stage FROM %s: want a static base (scratch or distroless/static)", f)
	}
	uid, _, _ := strings.Cut(img.user, ":")
	if uid == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q: want a non-root user", img.user)
	}
	for _, b := range []string{"signet-server", "signet-signer", "signet"} {
		checkStatic(t, img.local(t, "/usr/local/bin/"+b))
	}
	if len(img.entrypoint) == 0 || img.entrypoint[0] != "/usr/local/bin/signet-server" {
		t.Fatalf("ENTRYPOINT %q: want /usr/local/bin/signet-server", img.entrypoint)
	}
	cfgIdx := slices.Index(img.cmd, "--config")
	if cfgIdx < 0 || cfgIdx+1 >= len(img.cmd) {
		t.Fatalf("CMD %q: want --config FILE", img.cmd)
	}
	cfgPath := img.cmd[cfgIdx+1]
	raw, err := os.ReadFile(img.local(t, cfgPath))
	if err != nil {
		t.Fatal(err)
	}
	cfg := readServerConfig(t, raw)
	if !slices.Contains(img.volumes, cfg.DataDir) {
		t.Errorf("VOLUME %q does not hold the configuration's data_dir %s", img.volumes, cfg.DataDir)
	}
	if c := img.files["chown:"+cfg.DataDir]; c == "" || !strings.HasPrefix(c, uid+":") {
		t.Errorf("%s is owned by %q in the image, not by USER %s", cfg.DataDir, c, img.user)
	}
	if fi, err := os.Stat(img.local(t, cfg.DataDir)); err != nil || !fi.IsDir() {
		t.Errorf("%s in the image is not a directory: %v", cfg.DataDir, err)
	}
	_, port, _ := net.SplitHostPort(cfg.Listen)
	if !slices.Contains(img.expose, port) {
		t.Errorf("EXPOSE %q does not hold the listen port %s", img.expose, port)
	}
	if len(img.health) < 2 || img.health[0] != img.entrypoint[0] || img.health[1] != "healthcheck" || !slices.Contains(img.health, cfgPath) {
		t.Errorf("HEALTHCHECK CMD %q: want signet-server healthcheck with --config %s", img.health, cfgPath)
	}

	// The image as shipped: the entrypoint refuses to serve every
	// interface without auth, before it touches the data directory.
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	mapped := strings.ReplaceAll(string(raw), cfg.DataDir, data)
	shipped := filepath.Join(dir, "shipped.yaml")
	if err := os.WriteFile(shipped, []byte(mapped), 0o644); err != nil {
		t.Fatal(err)
	}
	server := img.local(t, img.entrypoint[0])
	args := slices.Clone(img.cmd)
	args[cfgIdx+1] = shipped
	code, out := run(t, testEnv(dir), server, args...)
	if code != 2 || !strings.Contains(out, "--insecure-no-auth") || !strings.Contains(out, "no auth: section is configured") {
		t.Errorf("the shipped configuration: exit %d, want 2 and a refusal naming --insecure-no-auth:\n%s", code, out)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("the refused start made the data directory: %v", err)
	}

	// The same configuration on a loopback port starts, and the health
	// check of the image answers 0, then 1 once the server stopped.
	loop := strings.ReplaceAll(mapped, cfg.Listen, "127.0.0.1:"+freePort(t))
	if err := os.WriteFile(shipped, []byte(loop), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, server, testEnv(dir), args...)
	health := slices.Clone(img.health)
	health[slices.Index(health, cfgPath)] = shipped
	if code, out := run(t, testEnv(dir), server, health[1:]...); code != 0 || strings.TrimSpace(out) != "healthy" {
		t.Errorf("HEALTHCHECK against the running server: exit %d\n%s\nserver:\n%s", code, out, srv.out)
	}
	_ = srv.cmd.Process.Signal(syscall.SIGTERM)
	<-srv.done
	if code, out := run(t, testEnv(dir), server, health[1:]...); code != 1 {
		t.Errorf("HEALTHCHECK against a stopped server: exit %d\n%s", code, out)
	}
	if v := img.healthOpts["interval"]; v == "" {
		t.Errorf("HEALTHCHECK without --interval")
	}
}

// pki writes a self-signed certificate and its key (PEM) for name.
func pki(t *testing.T, certFile, keyFile, name string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{name, "localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	for f, b := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func htpasswd(t *testing.T, file string) {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("admin-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("admin:"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startConfig starts signet-server (bin) with a configuration from deploy/:
// its absolute paths under prefixes (/etc/signet, /var/lib/signet, …) are
// moved into a temporary directory, and the files it names are made there
// (certificates, keys, htpasswd); flags override the listen address (and
// any more given).
func startConfig(t *testing.T, bin, yamlText string, prefixes []string, flags ...string) (*running, string) {
	t.Helper()
	dir := t.TempDir()
	for i, p := range prefixes {
		yamlText = strings.ReplaceAll(yamlText, p, filepath.Join(dir, fmt.Sprintf("p%d", i)))
	}
	var named struct {
		TLSCert string `yaml:"tls_cert"`
		TLSKey  string `yaml:"tls_key"`
		Auth    struct {
			Htpasswd    string `yaml:"htpasswd"`
			SigningKey  string `yaml:"signing_key"`
			SigningCert string `yaml:"signing_cert"`
		} `yaml:"auth"`
	}
	if err := yaml.Unmarshal([]byte(yamlText), &named); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{named.TLSCert, named.TLSKey, named.Auth.Htpasswd, named.Auth.SigningKey, named.Auth.SigningCert} {
		if f != "" && !strings.HasPrefix(f, dir) {
			t.Fatalf("the configuration names %s, outside the prefixes %q this test moves", f, prefixes)
		}
	}
	if named.TLSCert != "" {
		pki(t, named.TLSCert, named.TLSKey, "notary.example.com")
	}
	if named.Auth.Htpasswd != "" {
		htpasswd(t, named.Auth.Htpasswd)
	}
	if named.Auth.SigningKey != "" {
		pki(t, named.Auth.SigningCert, named.Auth.SigningKey, "signet token signing")
	}
	cfg := filepath.Join(dir, "server.yaml")
	if err := os.WriteFile(cfg, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--config", cfg, "--listen", "127.0.0.1:0"}, flags...)
	return startServer(t, bin, testEnv(dir), args...), dir
}

// unit is a systemd unit file: section → key → values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, b []byte) unit {
	t.Helper()
	u := unit{}
	sec := ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "["):
			sec = strings.Trim(l, "[]")
			u[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || sec == "" {
				t.Fatalf("unit line %q", l)
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	return u
}

// TestSystemdUnit: the unit passes systemd-analyze verify (with ExecStart
// pointing at the binary built from the Dockerfile's build stage), runs
// as a user of its own with the hardening options, and the configuration
// it names starts signet-server.
func TestSystemdUnit(t *testing.T) {
	img := buildImage(t)
	server := img.local(t, "/usr/local/bin/signet-server")
	b, err := os.ReadFile("systemd/signet-server.service")
	if err != nil {
		t.Fatal(err)
	}
	u := parseUnit(t, b)
	svc := u["Service"]
	want := map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
		"ProtectControlGroups": "yes", "RestrictNamespaces": "yes", "RestrictSUIDSGID": "yes",
		"MemoryDenyWriteExecute": "yes", "LockPersonality": "yes", "SystemCallArchitectures": "native",
		"CapabilityBoundingSet": "", "StateDirectory": "signet", "UMask": "0077",
	}
	for k, v := range want {
		if got := svc[k]; len(got) == 0 || got[len(got)-1] != v {
			t.Errorf("[Service] %s=%q, want %q", k, got, v)
		}
	}
	exec := strings.Fields(svc["ExecStart"][0])
	if len(exec) != 3 || exec[1] != "--config" {
		t.Fatalf("ExecStart %q: want BINARY --config FILE", exec)
	}

	if path, err := exec2("systemd-analyze"); err != nil {
		if required("systemd") {
			t.Fatalf("systemd-analyze not found (SIGNET_TEST_REQUIRE=%s): %v", os.Getenv("SIGNET_TEST_REQUIRE"), err)
		}
		t.Logf("systemd-analyze not found; unit not verified by systemd")
	} else {
		dir := t.TempDir()
		text := strings.Replace(string(b), "ExecStart="+exec[0], "ExecStart="+server, 1)
		f := filepath.Join(dir, "signet-server.service")
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out := run(t, []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + dir, "SYSTEMD_LOG_LEVEL=notice"}, path, "verify", "--man=no", f)
		if code != 0 || strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify: exit %d\n%s", code, out)
		}
	}

	// The configuration the unit reads (deploy/systemd/server.yaml) starts
	// signet-server, with the credentials where LoadCredential puts them.
	cfg, err := os.ReadFile("systemd/server.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range svc["LoadCredential"] {
		name, src, _ := strings.Cut(c, ":")
		if !strings.Contains(string(cfg), "/run/credentials/signet-server.service/"+name) || !strings.HasPrefix(src, "/etc/signet/") {
			t.Errorf("LoadCredential=%s: server.yaml does not read it from /run/credentials/signet-server.service/%s", c, name)
		}
	}
	r, _ := startConfig(t, server, string(cfg), []string{"/etc/signet", "/run/credentials/signet-server.service", "/var/lib/signet"}, "--metrics-listen", "127.0.0.1:0")
	if !strings.Contains(r.out.String(), "metrics on http://127.0.0.1:") {
		t.Errorf("no metrics listener:\n%s", r.out)
	}
}

func exec2(name string) (string, error) { return exec.LookPath(name) }

// required reports whether SIGNET_TEST_REQUIRE asks for component.
func required(component string) bool {
	for _, f := range strings.FieldsFunc(os.Getenv("SIGNET_TEST_REQUIRE"), func(r rune) bool { return r == ',' || r == ' ' }) {
		if f == "all" || f == component {
			return true
		}
	}
	return false
}

var _ io.Writer = (*syncBuf)(nil)
