package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/tuf"
)

func TestParseLifetime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90d": 90 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1y": 365 * 24 * time.Hour,
		"36h": 36 * time.Hour, "1y30d": 395 * 24 * time.Hour, "1d12h": 36 * time.Hour, "0d": 0,
	} {
		if got, err := parseLifetime(in); err != nil || got != want {
			t.Errorf("parseLifetime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "90", "9x", "-3d", "-1h", "1.5d", "99999999y"} {
		if _, err := parseLifetime(in); err == nil && in != "" {
			t.Errorf("parseLifetime(%q) succeeded", in)
		}
	}
	if got := formatIn(10*365*24*time.Hour - time.Minute); got != "9y 364d" {
		t.Errorf("formatIn = %q", got)
	}
	if got := formatIn(29*24*time.Hour + 5*time.Hour); got != "29d 5h" {
		t.Errorf("formatIn = %q", got)
	}
}

func TestExpiriesFromEnv(t *testing.T) {
	a := newApp(Env{Getenv: func(k string) string {
		return map[string]string{envTargetsExpiry: "90d", envSnapshotExpiry: "1y"}[k]
	}})
	e, err := a.expiries()
	if err != nil || e.Targets != 90*24*time.Hour || e.Snapshot != 365*24*time.Hour || e.Root != 0 {
		t.Fatalf("expiries = %+v, %v", e, err)
	}
	for env, val := range map[string]string{envRootExpiry: "11y", envTargetsExpiry: "soon", envSnapshotExpiry: "5m"} {
		a := newApp(Env{Getenv: func(k string) string {
			if k == env {
				return val
			}
			return ""
		}})
		if _, err := a.expiries(); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: %v", env, val, err)
		}
	}
}

// TestExpiryCommand lists a trust directory holding notary 0.7's cached
// metadata of a repository with delegations.
func TestExpiryCommand(t *testing.T) {
	src := filepath.Join("..", "tuf", "testdata", "notary-0.7", "delegations")
	trustDir := t.TempDir()
	gun := "example.com/expiry/app"
	meta := filepath.Join(trustDir, "tuf", filepath.FromSlash(gun), "metadata")
	var rootB []byte
	for _, f := range []string{"root.json", "targets.json", "snapshot.json", "timestamp.json", "targets/releases.json", "targets/team.json"} {
		b, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		if f == "root.json" {
			rootB = b
		}
		dst := filepath.Join(meta, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ts, err := tuf.Peek(mustRead(t, filepath.Join(src, "timestamp.json")))
	if err != nil {
		t.Fatal(err)
	}
	root, err := tuf.ParseRoot(rootB)
	if err != nil {
		t.Fatal(err)
	}
	// "Now" is a day before the timestamp expires.
	now := ts.Expires.Add(-24 * time.Hour)
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		a := newApp(Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader("")})
		a.now = func() time.Time { return now }
		cmd := a.rootCommand()
		cmd.SetArgs(append([]string{"-d", trustDir}, args...))
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		code := 0
		if err := cmd.Execute(); err != nil {
			code = 1
			errOut.WriteString(err.Error())
		}
		return code, out.String(), errOut.String()
	}

	code, out, errOut := run("expiry", "-o", "json")
	if code != 0 {
		t.Fatalf("expiry: %s", errOut)
	}
	var rows []expiryRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	got := map[string]expiryRow{}
	for _, r := range rows {
		got[r.Role+"/"+r.Kind] = r
		if r.GUN != gun {
			t.Errorf("GUN %q", r.GUN)
		}
	}
	for _, k := range []string{"root/metadata", "root/certificate", "targets/metadata", "snapshot/metadata", "timestamp/metadata", "targets/releases/metadata", "targets/team/metadata"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no row %s in %s", k, out)
		}
	}
	if rows[0].Role != tuf.RoleTimestamp || rows[0].InSeconds != 24*3600 {
		t.Errorf("first row %+v, want the timestamp, a day away", rows[0])
	}
	cert := got["root/certificate"]
	rk := root.Signed.Keys[root.Signed.Roles[tuf.RoleRoot].KeyIDs[0]]
	if !cert.Expires.Equal(rk.Certificates()[0].NotAfter) || cert.KeyID != rk.CanonicalID() {
		t.Errorf("certificate row %+v, want NotAfter %v of key %s", cert, rk.Certificates()[0].NotAfter, rk.CanonicalID())
	}

	code, out, _ = run("expiry", "--within", "2d")
	if code != 0 || !strings.Contains(out, "GUN") || !strings.Contains(out, "timestamp") || strings.Contains(out, "targets") {
		t.Errorf("expiry --within 2d:\n%s", out)
	}
	if !strings.Contains(out, "1d 0h") && !strings.Contains(out, "24h 0m") {
		t.Errorf("expiry --within 2d shows no IN of a day:\n%s", out)
	}
	now = ts.Expires.Add(time.Hour)
	code, out, _ = run("expiry", "--within", "0d")
	if code != 0 || !strings.Contains(out, "EXPIRED 1h 0m ago") {
		t.Errorf("expired timestamp:\n%s", out)
	}
	if code, _, errOut := run("expiry", "--within", "soon"); code == 0 || !strings.Contains(errOut, "--within") {
		t.Errorf("--within soon: %d %s", code, errOut)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
