package reference

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// smoke publishes one target with the real notary CLI and lists it back.
func smoke(t *testing.T, r *Reference, gun string) {
	t.Helper()
	e2etest.Need(t, "notary")
	home := t.TempDir()
	payload := filepath.Join(home, "payload.txt")
	if err := os.WriteFile(payload, []byte("reference recipe smoke test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := e2etest.Command{Env: append(e2etest.BaseEnv(home),
		"NOTARY_ROOT_PASSPHRASE=ref-root", "NOTARY_TARGETS_PASSPHRASE=ref-targets",
		"NOTARY_SNAPSHOT_PASSPHRASE=ref-snapshot", "NOTARY_DELEGATION_PASSPHRASE=ref-delegation"), Dir: home}
	notary := []string{"notary", "-s", r.URL, "--tlscacert", r.CAFile, "-d", filepath.Join(home, "trust")}
	c.OK(t, append(notary, "init", gun)...)
	c.OK(t, append(notary, "add", gun, "v1", payload)...)
	c.OK(t, append(notary, "publish", gun)...)
	res := c.OK(t, append(notary, "list", gun)...)
	if !strings.Contains(res.Stdout, "v1") {
		t.Fatalf("notary list after publish:\n%s", res)
	}
	mark := r.LogMark()
	c.OK(t, append(notary, "list", gun)...)
	if got := strings.Join(r.Requests(mark), "\n"); !strings.Contains(got, "GET /v2/"+gun+"/_trust/tuf/timestamp.json 200") {
		t.Fatalf("the server's request log lacks the timestamp fetch of a list:\n%s", got)
	}
}

func TestMemory(t *testing.T) {
	r := Start(t, false)
	smoke(t, r, "example.com/reference/memory")
}

// TestPostgres: the schema of schema/*.sql is what the Debian binaries
// need — a publish lands in tuf_files and changefeed, the timestamp key in
// private_keys.
func TestPostgres(t *testing.T) {
	r := Start(t, true)
	gun := "example.com/reference/postgres"
	smoke(t, r, gun)
	count := func(dbURL, query string) int {
		t.Helper()
		db, err := sql.Open("pgx", dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRowContext(t.Context(), query, gun).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	if n := count(r.serverDB, "SELECT count(*) FROM tuf_files WHERE gun = $1"); n < 4 {
		t.Errorf("tuf_files holds %d rows of %s, want root, targets, snapshot and timestamp", n, gun)
	}
	if n := count(r.serverDB, "SELECT count(*) FROM changefeed WHERE gun = $1"); n < 1 {
		t.Errorf("changefeed holds no record of %s", gun)
	}
	if n := count(r.signerDB, "SELECT count(*) FROM private_keys WHERE gun = $1"); n != 1 {
		t.Errorf("private_keys holds %d keys of %s, want its timestamp key", n, gun)
	}
}
