package firsthour

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/servercmd"
	"github.com/signet-trust/signet/internal/signercmd"
)

// moduleRoot is the repository the documents belong to.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := e2etest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// shellBlocks returns the ```sh blocks of a markdown document, each with
// the heading above it.
func shellBlocks(t *testing.T, file string) (blocks, headings []string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	heading, in := "", false
	var cur strings.Builder
	for sc.Scan() {
		l := sc.Text()
		switch {
		case !in && strings.HasPrefix(l, "#"):
			heading = strings.TrimSpace(strings.TrimLeft(l, "#"))
		case !in && l == "```sh":
			in = true
			cur.Reset()
		case in && l == "```":
			in = false
			blocks = append(blocks, cur.String())
			headings = append(headings, heading)
		case in:
			cur.WriteString(l + "\n")
		}
	}
	if in {
		t.Fatalf("%s: a ```sh block is not closed", file)
	}
	return blocks, headings
}

// goEnv is what the go command of the test uses (caches, proxy), so that
// the scripts' builds reuse the test's build cache.
func goEnv(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOFLAGS", "GOTOOLCHAIN", "GONOSUMDB", "GOSUMDB"} {
		b, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", k, err)
		}
		if v := strings.TrimSpace(string(b)); v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

var blockRE = regexp.MustCompile(`(?m)^@@block (\d+) ([0-9.]+)$`)

// runScript runs blocks in one bash (set -euo pipefail), in dir with env,
// and logs how long each block took. Background jobs the blocks start are
// in the script's process group, killed when the script ends.
func runScript(t *testing.T, dir string, env []string, blocks, headings []string, timeout time.Duration) string {
	t.Helper()
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for i, b := range blocks {
		fmt.Fprintf(&script, "printf '\\n@@block %d %%s\\n' \"$(date +%%s.%%N)\"\n%s", i, b)
	}
	fmt.Fprintf(&script, "printf '\\n@@block %d %%s\\n' \"$(date +%%s.%%N)\"\n", len(blocks))
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out e2etest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the registry and any other job
	var err error
	select {
	case err = <-done:
	case <-time.After(timeout):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = fmt.Errorf("killed after %v", timeout)
	}
	text := out.String()
	marks := blockRE.FindAllStringSubmatch(text, -1)
	var total float64
	for i := 0; i+1 < len(marks); i++ {
		var a, b float64
		fmt.Sscan(marks[i][2], &a)
		fmt.Sscan(marks[i+1][2], &b)
		total += b - a
		first, _, _ := strings.Cut(strings.TrimSpace(blocks[i]), "\n")
		t.Logf("%6.2fs  %-32s %s", b-a, headings[i], first)
	}
	t.Logf("%6.2fs  total", total)
	if err != nil {
		n := len(marks) - 1
		t.Fatalf("block %d (%s) failed: %v\n--- block ---\n%s--- output ---\n%s", n, headings[max(n, 0)], err, blocks[max(n, 0)], text)
	}
	return blockRE.ReplaceAllString(text, "")
}

// TestQuickstart runs docs/quickstart.md as a newcomer would: a fresh
// clone, the server started as section 1 says, then every command block
// in one shell, in order, with the real notary, docker, docker-registry,
// skopeo, openssl and curl. Only the ports (free ones instead of 4443 and
// 5000) and the image pushed (a local OCI layout instead of Docker Hub's
// busybox) differ.
func TestQuickstart(t *testing.T) {
	e2etest.Need(t, "git", "make", "notary", "docker", "docker-registry", "skopeo", "openssl", "curl")
	root := moduleRoot(t)
	work := t.TempDir()
	clone := filepath.Join(work, "signet")
	if out, err := exec.Command("git", "clone", "--quiet", root, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone %s: %v\n%s", root, err, out)
	}
	head, err := exec.Command("git", "-C", clone, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}

	blocks, headings := shellBlocks(t, filepath.Join(clone, "docs", "quickstart.md"))
	if len(blocks) < 10 || !strings.Contains(blocks[0], "go run ./cmd/signet-server") {
		t.Fatalf("the quickstart's first block is not the server's start: %q", blocks[0])
	}
	// Section 1, in the clone: the server on its own terminal.
	srv := e2etest.Start(t, e2etest.Options{DataDir: filepath.Join(clone, "signet-data"), LogTailOnFailure: true})
	regAddr := e2etest.FreeAddr(t)
	layout := e2etest.WriteOCILayout(t, filepath.Join(work, "image"), "v1", "hello from the first hour\n")
	replace := strings.NewReplacer(
		"127.0.0.1:4443", srv.Addr,
		"127.0.0.1:5000", regAddr,
		"docker://docker.io/library/busybox:1.36", "oci:"+layout+":v1",
	)
	for i := range blocks {
		blocks[i] = replace.Replace(blocks[i])
	}
	env := append(e2etest.BaseEnv(filepath.Join(work, "home")), goEnv(t)...)
	env = append(env, "DOCKER_HOST=unix://"+filepath.Join(work, "no-daemon.sock"), "DOCKER_CLI_HINTS=false")
	if err := os.MkdirAll(filepath.Join(work, "home"), 0o700); err != nil {
		t.Fatal(err)
	}
	out := runScript(t, clone, env, blocks[1:], headings[1:], 25*time.Minute)

	// Section 8: signet built by make from the clone, named by its commit.
	if !strings.Contains(out, "commit "+string(head[:12])) || strings.Contains(out, "(modified)") {
		t.Errorf("signet version does not name the clone's commit %s:\n%s", head[:12], out)
	}
	if fi, err := os.Stat(filepath.Join(clone, "bin", "signet-server")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("make build left no bin/signet-server: %v", err)
	}
	if st, _ := exec.Command("git", "-C", clone, "status", "--porcelain").Output(); len(st) != 0 {
		t.Errorf("the walkthrough left files git sees (bin/ and signet-data/ are ignored):\n%s", st)
	}
	// The image was signed with the registry's digest, which every verify
	// printed.
	digest := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindAllString(out, -1)
	seen := map[string]int{}
	for _, d := range digest {
		seen[d]++
	}
	ok := false
	for _, n := range seen {
		ok = ok || n >= 4 // verify, verify --require-signer, skopeo inspect, save-root-key, root-key
	}
	if !ok {
		t.Errorf("no digest printed by verify, verify --require-signer, skopeo inspect and the pinned verify alike:\n%s", out)
	}
	for _, want := range []string{"Successfully signed " + regAddr + "/demo/hello:v1", "SIGNER", "alice", "Successfully published changes"} {
		if !strings.Contains(out, want) {
			t.Errorf("walkthrough output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(srv.Stderr.String()+srv.Stdout.String(), "listening on") {
		t.Errorf("server output:\n%s", srv.Stdout)
	}
}

// TestConfigurationReference: every YAML key signet-server and
// signet-signer accept is in docs/configuration.md's tables.
func TestConfigurationReference(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	section := func(title string) string {
		i := strings.Index(doc, "## "+title)
		if i < 0 {
			t.Fatalf("no section %q", title)
		}
		rest := doc[i+3:]
		if j := strings.Index(rest, "\n## "); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	for _, c := range []struct {
		title string
		cfg   any
	}{{"signet-server", servercmd.Config{}}, {"signet-signer", signercmd.Config{}}} {
		table := section(c.title)
		keys := yamlKeys(reflect.TypeOf(c.cfg), "")
		if len(keys) < 5 {
			t.Fatalf("%s: only %d keys found", c.title, len(keys))
		}
		for _, k := range keys {
			if !strings.Contains(table, "\n| `"+k+"` |") {
				t.Errorf("docs/configuration.md, %s: no row for `%s`", c.title, k)
			}
		}
	}
}

// yamlKeys lists the YAML keys of a configuration struct, dotted below
// nested structs, inline structs flattened.
func yamlKeys(typ reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Struct && ft.String() != "time.Time" {
			if strings.Contains(opts, "inline") {
				out = append(out, yamlKeys(ft, prefix)...)
			} else {
				out = append(out, yamlKeys(ft, prefix+tag+".")...)
			}
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		out = append(out, prefix+tag)
	}
	return out
}
