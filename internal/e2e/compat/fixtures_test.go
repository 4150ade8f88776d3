package compat

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// capture writes the reference server's current metadata of gun (every
// role reachable from the snapshot, and every root version) plus the key
// files of the given trust directories to
// internal/tuf/testdata/<kind>/<name>/, when SIGNET_CAPTURE_FIXTURES=1 and
// the target is the reference. trustDirs maps an output directory name
// ("private", "delegate-private") to a trust directory whose private/ is
// copied. Extra files (public keys) are copied beside them.
func (e *scenarioEnv) capture(kind, name, gun string, trustDirs map[string]string, extra ...string) {
	t := e.t
	t.Helper()
	if os.Getenv("SIGNET_CAPTURE_FIXTURES") != "1" || e.tg.name != targetReference {
		return
	}
	out := filepath.Join(mustModuleRoot(t), "internal", "tuf", "testdata", kind, name)
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	var files []string
	write := func(rel string, b []byte, mode os.FileMode) {
		p := filepath.Join(out, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		files = append(files, rel)
	}
	fetch := func(file string) []byte {
		status, body := e.tg.get(t, "/v2/"+gun+"/_trust/tuf/"+file)
		if status != 200 {
			t.Fatalf("capture: GET %s of %s: status %d: %s", file, gun, status, body)
		}
		return body
	}

	// The current timestamp first, then the snapshot it names, then every
	// role the snapshot lists, all as served ("current" routes).
	write("timestamp.json", fetch("timestamp.json"), 0o644)
	snap := fetch("snapshot.json")
	write("snapshot.json", snap, 0o644)
	var s struct {
		Signed struct {
			Meta map[string]json.RawMessage `json:"meta"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(snap, &s); err != nil {
		t.Fatalf("capture: snapshot.json: %v", err)
	}
	roles := make([]string, 0, len(s.Signed.Meta))
	for role := range s.Signed.Meta {
		roles = append(roles, role)
	}
	sort.Strings(roles)
	var rootVersion int
	for _, role := range roles {
		b := fetch(role + ".json")
		write(role+".json", b, 0o644)
		if role == "root" {
			var r struct {
				Signed struct {
					Version int `json:"version"`
				} `json:"signed"`
			}
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("capture: root.json: %v", err)
			}
			rootVersion = r.Signed.Version
		}
	}
	// Root history, as a client walking a rotation fetches it.
	if rootVersion > 1 {
		for v := 1; v <= rootVersion; v++ {
			f := fmt.Sprintf("%d.root.json", v)
			write(f, fetch(f), 0o644)
		}
	}

	dirNames := make([]string, 0, len(trustDirs))
	for d := range trustDirs {
		dirNames = append(dirNames, d)
	}
	sort.Strings(dirNames)
	for _, d := range dirNames {
		src := filepath.Join(trustDirs[d], "private")
		entries, err := os.ReadDir(src)
		if err != nil {
			t.Fatalf("capture: %v", err)
		}
		for _, ent := range entries {
			if ent.IsDir() || !strings.HasSuffix(ent.Name(), ".key") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(src, ent.Name()))
			if err != nil {
				t.Fatal(err)
			}
			write(d+"/"+ent.Name(), b, 0o600)
		}
	}
	for _, f := range extra {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		write(filepath.Base(f), b, 0o644)
	}

	passphrases := map[string]string{
		"root": rootPass, "targets": targetsPass, "snapshot": snapshotPass, "delegation": delegationPass,
	}
	client := "notary " + debVersion("notary")
	if kind == "docker-trust" {
		passphrases = map[string]string{"root": dockerRootPass, "repository": dockerRepoPass}
		client = "docker CLI " + dockerVersion()
	}
	sort.Strings(files)
	manifest, err := json.MarshalIndent(map[string]any{
		"scenario":    e.name,
		"gun":         gun,
		"server":      "notary-server " + debVersion("notary") + " (Debian package, memory storage, remote notary-signer, ecdsa)",
		"client":      client,
		"captured":    time.Now().UTC().Format(time.RFC3339),
		"passphrases": passphrases,
		"files":       files,
		"notes": "Metadata bytes exactly as served by the reference notary-server (current routes; " +
			"N.root.json by version). Key files are the clients' encrypted PKCS#8 files, named by canonical key ID. " +
			"Written by internal/e2e/compat with SIGNET_CAPTURE_FIXTURES=1.",
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	write("fixture.json", append(manifest, '\n'), 0o644)
	t.Logf("captured %d fixture files into %s", len(files), out)
}

// debVersion is the installed Debian package version of pkg.
func debVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return "(unknown version)"
	}
	return strings.TrimSpace(string(out))
}

func dockerVersion() string {
	out, err := exec.Command("docker", "--version").Output()
	if err != nil {
		return "(unknown version)"
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "Docker version ")
}
