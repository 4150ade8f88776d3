package e2etest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The programs of this module the tests run, each with the variable that
// names a prebuilt binary instead. A tag set ("pkcs11") builds another
// binary with its own variable.
var programs = map[string]string{
	"signet-server":        "SIGNET_SERVER_BIN",
	"signet":               "SIGNET_CLI_BIN",
	"signet-signer":        "SIGNET_SIGNER_BIN",
	"signet-admission":     "SIGNET_ADMISSION_BIN",
	"signet+pkcs11":        "SIGNET_CLI_PKCS11_BIN",
	"signet-signer+pkcs11": "SIGNET_SIGNER_PKCS11_BIN",
}

// buildTimeout bounds one `go build` of every program.
const buildTimeout = 10 * time.Minute

// Binary returns the path of ./cmd/name built for the tests (with the
// build tags given, e.g. "pkcs11"), or the binary named by its variable
// (SIGNET_SERVER_BIN, SIGNET_CLI_BIN, SIGNET_SIGNER_BIN,
// SIGNET_ADMISSION_BIN, SIGNET_CLI_PKCS11_BIN, SIGNET_SIGNER_PKCS11_BIN)
// when that is set.
//
// Binaries are built once per source tree, not once per test binary: the
// first test process that needs them builds every program of cmd/ with one
// `go build` into a cache directory keyed by a hash of every source file
// that goes into them (and the Go version and tags), under a file lock, so
// that the test binaries `go test ./...` runs in parallel wait for that
// one build and then share it. The cache is $SIGNET_TEST_BUILD_CACHE, or
// signet-e2e-bin under the user's cache directory; entries unused for a
// week are removed.
func Binary(t testing.TB, name string, tags ...string) string {
	t.Helper()
	bin, err := BuildBinary(name, tags...)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// BuildBinary is Binary for TestMain and tools: it returns an error
// instead of failing a test.
func BuildBinary(name string, tags ...string) (string, error) {
	key := name
	if len(tags) > 0 {
		key += "+" + strings.Join(tags, ",")
	}
	envVar, ok := programs[key]
	if !ok {
		return "", fmt.Errorf("e2etest: no program %q", key)
	}
	if p := os.Getenv(envVar); p != "" {
		return p, nil
	}
	dir, err := buildAll(strings.Join(tags, ","))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

var builds struct {
	sync.Mutex
	dirs map[string]string // tags → directory holding every program
}

// buildAll builds every program of cmd/ with tags into the cache (once per
// source tree) and returns the directory holding them.
func buildAll(tags string) (string, error) {
	builds.Lock()
	defer builds.Unlock()
	if d, ok := builds.dirs[tags]; ok {
		return d, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	// go test puts its own GOROOT/bin first on the test's PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("e2etest: the go command is not on PATH: %w", err)
	}
	key, err := sourceKey(goTool, root, tags)
	if err != nil {
		return "", fmt.Errorf("e2etest: hashing the source tree: %w", err)
	}
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, key)
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return "", fmt.Errorf("e2etest: locking the build cache: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		if err := build(goTool, root, tags, dir); err != nil {
			return "", err
		}
	}
	now := time.Now()
	_ = os.Chtimes(dir, now, now) // in use: keep it from pruning
	prune(cache, dir)
	if builds.dirs == nil {
		builds.dirs = map[string]string{}
	}
	builds.dirs[tags] = dir
	return dir, nil
}

// build runs one `go build` of ./cmd/... into a fresh directory and moves
// it to dir when it is complete.
func build(goTool, root, tags, dir string) error {
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	args := []string{"build", "-o", tmp + string(filepath.Separator)}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.CommandContext(ctx, goTool, append(args, "./cmd/...")...)
	cmd.Dir = root
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("e2etest: go %s ./cmd/... failed: %v\n%s", strings.Join(args, " "), err, out)
	}
	fmt.Fprintf(os.Stderr, "e2etest: built ./cmd/... (tags %q) in %v into %s\n", tags, time.Since(start).Round(time.Millisecond), dir)
	if err := os.WriteFile(filepath.Join(tmp, "complete"), nil, 0o644); err != nil {
		return err
	}
	os.RemoveAll(dir)
	return os.Rename(tmp, dir)
}

// sourceKey hashes what a build of ./cmd/... with tags depends on: the Go
// version and environment that matter, go.mod and go.sum (which fix every
// dependency), and every file of this module's packages that go into it.
func sourceKey(goTool, root, tags string) (string, error) {
	h := sha256.New()
	env := exec.Command(goTool, "env", "GOVERSION", "GOOS", "GOARCH", "CGO_ENABLED", "GOFLAGS", "GOEXPERIMENT")
	env.Dir = root
	out, err := env.Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	fmt.Fprintf(h, "tags %q\n%s\n", tags, out)
	list := exec.Command(goTool, "list", "-deps", "-tags", tags, "-f",
		`{{if and (not .Standard) .Module .Module.Main}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .CgoFiles}} {{.}}{{end}}{{range .CFiles}} {{.}}{{end}}{{range .HFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}`,
		"./cmd/...")
	list.Dir = root
	var stderr bytes.Buffer
	list.Stderr = &stderr
	out, err = list.Output()
	if err != nil {
		return "", fmt.Errorf("go list: %v\n%s", err, stderr.Bytes())
	}
	files := []string{filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum")}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		for _, name := range f[1:] {
			files = append(files, filepath.Join(f[0], name))
		}
	}
	for _, name := range files {
		rel, _ := filepath.Rel(root, name)
		fmt.Fprintf(h, "%s\n", rel)
		f, err := os.Open(name)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && strings.HasSuffix(name, "go.sum") {
				continue
			}
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:12]), nil
}

func cacheDir() (string, error) {
	dir := os.Getenv("SIGNET_TEST_BUILD_CACHE")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir = filepath.Join(base, "signet-e2e-bin")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("e2etest: build cache: %w", err)
	}
	return dir, nil
}

// prune removes cache entries unused for a week (never keep, nor one
// whose lock another process holds).
func prune(cache, keep string) {
	ents, err := os.ReadDir(cache)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(cache, e.Name())
		if !e.IsDir() || p == keep || strings.HasSuffix(p, ".tmp") {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < 7*24*time.Hour {
			continue
		}
		if unlock, err := tryLockFile(p + ".lock"); err == nil {
			os.RemoveAll(p)
			os.Remove(p + ".lock")
			unlock()
		}
	}
}

var (
	moduleRootOnce sync.Once
	moduleRootDir  string
	moduleRootErr  error
)

// ModuleRoot is the directory of this module's go.mod, found upwards from
// the working directory (a test's package directory).
func ModuleRoot() (string, error) {
	moduleRootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			moduleRootErr = err
			return
		}
		for {
			if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/signet-trust/signet\n")) {
				moduleRootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				moduleRootErr = errors.New("e2etest: no go.mod of github.com/signet-trust/signet above the working directory")
				return
			}
			dir = parent
		}
	})
	return moduleRootDir, moduleRootErr
}
