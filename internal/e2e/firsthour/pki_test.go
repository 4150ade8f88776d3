package firsthour

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// yamlBlocks returns the ```yaml blocks of a markdown document.
func yamlBlocks(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	var cur strings.Builder
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case !in && l == "```yaml":
			in = true
			cur.Reset()
		case in && l == "```":
			in = false
			out = append(out, cur.String())
		case in:
			cur.WriteString(l + "\n")
		}
	}
	return out
}

// TestPKIRecipe runs docs/pki.md's openssl blocks as written (with
// SERVER_NAME=localhost), then starts signet-signer and signet-server as
// its block says, with the files they made, token authentication signed
// by the recipe's token key (its YAML block), and publishes through them
// with the notary client: the server's own certificate, the signer's
// mutual TLS and the token signing key all in use.
func TestPKIRecipe(t *testing.T) {
	e2etest.Need(t, "openssl", "notary", "bash")
	doc := filepath.Join(moduleRoot(t), "docs", "pki.md")
	blocks, headings := shellBlocks(t, doc)
	var recipe, daemons []string
	var recipeHeadings []string
	for i, b := range blocks {
		if strings.Contains(b, "signet-signer --listen") {
			daemons = append(daemons, b)
			continue
		}
		recipe = append(recipe, b)
		recipeHeadings = append(recipeHeadings, headings[i])
	}
	if len(daemons) != 1 || len(recipe) < 4 {
		t.Fatalf("pki.md: %d recipe blocks and %d daemon blocks", len(recipe), len(daemons))
	}
	if !strings.Contains(recipe[0], "SERVER_NAME=notary.example.com") {
		t.Fatalf("the first block does not set SERVER_NAME: %q", recipe[0])
	}
	recipe[0] = strings.Replace(recipe[0], "SERVER_NAME=notary.example.com", "SERVER_NAME=localhost", 1)
	work := t.TempDir()
	runScript(t, work, e2etest.BaseEnv(work), recipe, recipeHeadings, 2*time.Minute)
	pki := filepath.Join(work, "pki")
	for _, f := range []string{"ca.crt", "server.crt", "server.key", "signer.crt", "signer.key", "server-client.crt", "server-client.key", "token.crt", "token.key"} {
		if _, err := os.Stat(filepath.Join(pki, f)); err != nil {
			t.Fatalf("the recipe made no %s: %v", f, err)
		}
	}
	if out, err := exec.Command("openssl", "verify", "-CAfile", filepath.Join(pki, "ca.crt"), filepath.Join(pki, "server.crt"), filepath.Join(pki, "signer.crt"), filepath.Join(pki, "server-client.crt")).CombinedOutput(); err != nil {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}

	// The daemons, as the block starts them, on free ports.
	signerAddr, serverAddr := e2etest.FreeAddr(t), e2etest.FreeAddr(t)
	_, signerPort, _ := net.SplitHostPort(signerAddr)
	lines := strings.Split(strings.ReplaceAll(daemons[0], "\\\n", " "), "\n")
	var signerLine, serverLine string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "signet-signer "):
			signerLine = l
		case strings.HasPrefix(l, "signet-server "):
			serverLine = l
		}
	}
	if signerLine == "" || serverLine == "" {
		t.Fatalf("the daemon block:\n%s", daemons[0])
	}
	// The token service of the recipe's YAML block.
	users, err := bcrypt.GenerateFromPassword([]byte(password("alice")), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(work, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("alice:"+string(users)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ys := yamlBlocks(t, doc)
	if len(ys) != 1 || !strings.Contains(ys[0], "signing_key:") {
		t.Fatalf("pki.md: want one YAML block with signing_key: %q", ys)
	}
	_, serverPort, _ := net.SplitHostPort(serverAddr)
	cfg := strings.NewReplacer("/etc/signet/htpasswd", htpasswd, "/etc/signet/pki/", pki+"/",
		"notary.example.com:4443", "localhost:"+serverPort).Replace(ys[0])
	cfgFile := filepath.Join(work, "server.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(e2etest.BaseEnv(work), "SIGNER_NAME=127.0.0.1", "SIGNET_SIGNER_PASSPHRASE_DEFAULT=pki-signer-pass",
		"SIGNET_KEY_PASSPHRASE=pki-server-pass", "PATH="+filepath.Dir(e2etest.Binary(t, "signet-server"))+":"+os.Getenv("PATH"))
	signerLine = strings.ReplaceAll(signerLine, ":4444", ":"+signerPort)
	serverLine = strings.ReplaceAll(serverLine, ":4444", ":"+signerPort)
	serverLine = strings.Replace(serverLine, "signet-server ", "signet-server --listen "+serverAddr+" --data-dir server-data --config "+cfgFile+" ", 1)
	signer := e2etest.Daemon(t, e2etest.ProcessOptions{Name: "signet-signer", Args: []string{"bash", "-c", "exec " + signerLine},
		Dir: pki, Env: env, LogFile: filepath.Join(work, "signer.log")})
	if err := e2etest.WaitListening(t.Context(), signerAddr, signer.Done(), 30*time.Second); err != nil {
		t.Fatalf("signet-signer: %v\n%s", err, signer.LogTail(30))
	}
	server := e2etest.Daemon(t, e2etest.ProcessOptions{Name: "signet-server", Args: []string{"bash", "-c", "exec " + serverLine},
		Dir: pki, Env: env, LogFile: filepath.Join(work, "server.log")})
	if err := e2etest.WaitListening(t.Context(), serverAddr, server.Done(), 30*time.Second); err != nil {
		t.Fatalf("signet-server: %v\n%s", err, server.LogTail(30))
	}

	// notary, trusting the recipe's CA, through the name on the
	// certificate, logged in by the token service the recipe's key signs for.
	home := t.TempDir()
	payload := filepath.Join(home, "payload.txt")
	if err := os.WriteFile(payload, []byte("pki\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := e2etest.Command{Env: e2etest.BaseEnv(home)}.WithEnv(notaryAuth("alice", password("alice")),
		"NOTARY_ROOT_PASSPHRASE="+rootPass, "NOTARY_TARGETS_PASSPHRASE="+repoPass, "NOTARY_SNAPSHOT_PASSPHRASE="+repoPass)
	notary := func(args ...string) []string {
		return append([]string{"notary", "-s", "https://localhost:" + serverPort, "--tlscacert", filepath.Join(pki, "ca.crt"), "-d", filepath.Join(home, "trust")}, args...)
	}
	const gun = "example.com/pki/app"
	n.OK(t, notary("init", gun)...)
	n.OK(t, notary("add", gun, "v1", payload)...)
	n.OK(t, notary("publish", gun)...)
	// notary 0.7 reads anonymously ("unauthorized" here, where no
	// anonymous_pull is configured); signet logs in with NOTARY_AUTH.
	if r := n.Run(t, notary("list", gun)...); r.Succeeded() || !strings.Contains(r.Output(), "unauthorized") {
		t.Errorf("notary list without anonymous reads:\n%s", r)
	}
	signet := append([]string{e2etest.Binary(t, "signet")}, notary("list", gun)[1:]...)
	if r := n.OK(t, signet...); !strings.Contains(r.Stdout, "v1") {
		t.Fatalf("signet list:\n%s", r)
	}
	// The publish was timestamped with a key the server holds only in the
	// signer, reached over the recipe's mutual TLS.
	if log, _ := os.ReadFile(filepath.Join(work, "server.log")); !strings.Contains(string(log), "online keys are held by a remote signer") {
		t.Errorf("the server does not use the signer:\n%s", log)
	}
	if fi, err := os.Stat(filepath.Join(pki, "signer-data", "signer.db")); err != nil || fi.Size() == 0 {
		t.Errorf("the signer holds no keys: %v", err)
	}
}
