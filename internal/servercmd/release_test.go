package servercmd_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
)

// releaseData is a data directory written by signet-server at de57e35, the
// release before the one custody core (its README says how it was made).
const releaseData = "../custody/testdata/release-de57e35/signet-data"

// TestReleaseDataDirectory starts signet-server on a copy of a data
// directory written by the previous release, with the passphrase that
// release generated into it: the server migrates the online keys, starts,
// and serves every repository with the same keys — the timestamp and
// server-held snapshot keys it hands out are those the roots list, and the
// timestamps it serves verify against them. A second start finds nothing
// to migrate.
func TestReleaseDataDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "signet-data")
	err := filepath.WalkDir(releaseData, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(releaseData, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--listen", "127.0.0.1:0", "--data-dir", dir}
	for start := range 2 {
		r := startMain(t, args, nil)
		if !strings.Contains(r.stdout.String(), "using the local CA") {
			t.Errorf("start %d did not reuse the release's local CA:\n%s", start, r.stdout)
		}
		c := client(t, filepath.Join(dir, "tls", "ca.crt"))
		wantServing(t, c, r.addr)
		if got := get(t, c, "https://"+r.addr+"/_signet/ready"); got.status != 200 {
			t.Errorf("ready: %d %s", got.status, got.body)
		}
		for gun, roles := range map[string][]string{
			"example.com/legacy/app":     {tuf.RoleTimestamp, tuf.RoleSnapshot},
			"example.com/legacy/second":  {tuf.RoleTimestamp},
			"example.com/legacy/ed25519": {tuf.RoleTimestamp, tuf.RoleSnapshot},
		} {
			base := "https://" + r.addr + "/v2/" + gun + "/_trust/tuf/"
			rootResp := get(t, c, base+"root.json")
			if rootResp.status != 200 {
				t.Fatalf("GET %s root.json: %d %s", gun, rootResp.status, rootResp.body)
			}
			root, err := tuf.ParseRoot(rootResp.body)
			if err != nil {
				t.Fatal(err)
			}
			for _, role := range roles {
				resp := get(t, c, base+role+".key")
				if resp.status != 200 {
					t.Fatalf("GET %s %s.key: %d %s", gun, role, resp.status, resp.body)
				}
				var k keys.PublicKey
				if err := json.Unmarshal(resp.body, &k); err != nil {
					t.Fatal(err)
				}
				if want := root.Signed.Roles[role].KeyIDs; !slices.Contains(want, k.ID()) {
					t.Fatalf("start %d: %s %s key is %s; the root lists %q", start, gun, role, k.ID(), want)
				}
			}
			ts := get(t, c, base+"timestamp.json")
			m, err := tuf.ParseTimestamp(ts.body)
			if err != nil {
				t.Fatalf("%s timestamp: %v", gun, err)
			}
			rk := root.Signed.Roles[tuf.RoleTimestamp]
			if err := tuf.VerifySignatures(m, rk.KeyIDs, rk.Threshold, root.Signed.Keys); err != nil {
				t.Fatalf("%s timestamp: %v", gun, err)
			}
		}
		if code := r.stop(); code != 0 {
			t.Fatalf("start %d: exit %d\n%s", start, code, r.stderr)
		}
		logs := r.stderr.String()
		migrated := strings.Contains(logs, "keys of an earlier release re-sealed") && strings.Contains(logs, `"migrated":6`) && strings.Contains(logs, `"left":0`)
		if migrated != (start == 0) {
			t.Errorf("start %d: migration logged: %v\n%s", start, migrated, logs)
		}
	}
}
