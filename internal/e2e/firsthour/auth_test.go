package firsthour

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/signet-trust/signet/internal/auth"
	"github.com/signet-trust/signet/internal/cli"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

const (
	notaryService   = "signet-notary"
	registryService = "signet-registry"
	rootPass        = "first-hour-root-pass"
	repoPass        = "first-hour-repo-pass"
)

func password(user string) string { return user + "-first-hour-pw" }

// authSetup is signet-server with its built-in token service, its local
// CA and no anonymous reads, and a docker-registry whose token realm is
// that service; users alice (user) and root (admin).
type authSetup struct {
	dir      string
	server   *e2etest.Server
	addr     string // signet-server host:port
	caFile   string // the local CA
	registry *e2etest.Registry
	signet   string // the signet binary
}

func newAuthSetup(t *testing.T) *authSetup {
	t.Helper()
	e2etest.Need(t, "docker-registry")
	s := &authSetup{dir: t.TempDir(), signet: e2etest.Binary(t, "signet")}
	var users strings.Builder
	for _, u := range []string{"alice", "root"} {
		h, err := bcrypt.GenerateFromPassword([]byte(password(u)), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		users.WriteString(u + ":" + string(h) + "\n")
	}
	htpasswd := filepath.Join(s.dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(users.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s.addr = e2etest.FreeAddr(t)
	cfg := filepath.Join(s.dir, "signet.yaml")
	yaml := "auth:\n  type: token\n  service: " + notaryService + "\n  issuer: signet-first-hour\n  htpasswd: " + htpasswd +
		"\n  admins: [root]\n  audiences: [" + notaryService + ", " + registryService + "]\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(s.dir, "signet-data")
	s.server = e2etest.Start(t, e2etest.Options{DataDir: dataDir, LogTailOnFailure: true,
		Env: []string{"SIGNET_KEY_PASSPHRASE=first-hour-key"}, Flags: []string{"--config", cfg, "--listen", s.addr}})
	s.caFile = filepath.Join(dataDir, "tls", "ca.crt")
	s.registry = e2etest.StartRegistry(t, "  token:\n    realm: https://"+s.addr+auth.TokenPath+"\n    service: "+registryService+
		"\n    issuer: signet-first-hour\n    rootcertbundle: "+filepath.Join(dataDir, "auth", auth.SigningCertFile)+"\n")
	return s
}

// user is one person's machine: HOME, DOCKER_CONFIG with the trust
// server's CA in tls/<host:port>/ (and nowhere else), passphrases.
type user struct {
	home, config string
	cmd          e2etest.Command
}

func (s *authSetup) newUser(t *testing.T) *user {
	t.Helper()
	u := &user{home: t.TempDir()}
	u.config = filepath.Join(u.home, ".docker")
	tlsDir := filepath.Join(u.config, "tls", s.addr)
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(s.caFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tlsDir, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	u.cmd = e2etest.Command{Env: e2etest.BaseEnv(u.home)}.WithEnv(
		"DOCKER_CONFIG="+u.config,
		"DOCKER_HOST=unix://"+filepath.Join(u.home, "no-daemon.sock"), "DOCKER_CLI_HINTS=false",
		"DOCKER_CONTENT_TRUST_SERVER=https://"+s.addr,
		"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE="+rootPass, "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE="+repoPass,
		"NOTARY_ROOT_PASSPHRASE="+rootPass, "NOTARY_TARGETS_PASSPHRASE="+repoPass,
		"NOTARY_SNAPSHOT_PASSPHRASE="+repoPass, "NOTARY_DELEGATION_PASSPHRASE="+repoPass)
	return u
}

// dockerLogin stores credentials for host as `docker login` does.
func (u *user) dockerLogin(t *testing.T, host, name, pass string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(name + ":" + pass))}}})
	if err := os.WriteFile(filepath.Join(u.config, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func notaryAuth(name, pass string) string {
	return "NOTARY_AUTH=" + base64.StdEncoding.EncodeToString([]byte(name+":"+pass))
}

// TestNotaryCommandsLogIn: notary and signet, with NOTARY_AUTH, publish
// to a trust server that lets nobody in anonymously; signet without
// credentials, or with wrong ones, says it was refused and how to log in;
// an address with no server says it could not reach it; a prompt on a
// terminal logs in; "*" (key rotation on the server) needs an admin.
func TestNotaryCommandsLogIn(t *testing.T) {
	e2etest.Need(t, "notary")
	s := newAuthSetup(t)
	u := s.newUser(t)
	trustDir := filepath.Join(u.home, "trust")
	payload := filepath.Join(u.home, "payload.txt")
	if err := os.WriteFile(payload, []byte("first hour\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	alice := u.cmd.WithEnv(notaryAuth("alice", password("alice")))
	conn := []string{"-s", "https://" + s.addr, "--tlscacert", s.caFile, "-d", trustDir}

	// The reference client, as the operator's docs show it.
	notary := func(args ...string) []string { return append(append([]string{"notary"}, conn...), args...) }
	const gunN = "example.com/first/notary"
	alice.OK(t, notary("init", gunN)...)
	alice.OK(t, notary("add", gunN, "v1", payload)...)
	alice.OK(t, notary("publish", gunN)...)

	// signet, the same way, on its own repository; reads log in too.
	signet := func(args ...string) []string { return append(append([]string{s.signet}, conn...), args...) }
	const gun = "example.com/first/signet"
	alice.OK(t, signet("init", gun)...)
	alice.OK(t, signet("add", gun, "v1", payload)...)
	alice.OK(t, signet("publish", gun)...)
	if r := alice.OK(t, signet("list", gun)...); !strings.Contains(r.Stdout, "v1") {
		t.Fatalf("list:\n%s", r)
	}
	if r := alice.OK(t, signet("list", gunN)...); !strings.Contains(r.Stdout, "v1") {
		t.Fatalf("signet list of notary's repository:\n%s", r)
	}

	// No credentials anywhere: refused, and told how to log in.
	bare := filepath.Join(u.home, "bare")
	r := u.cmd.Fail(t, s.signet, "-s", "https://"+s.addr, "--tlscacert", s.caFile, "-d", bare, "list", gun)
	e2etest.WantOutput(t, r, "refused the request", "NOTARY_AUTH", "docker login")
	if strings.Contains(r.Output(), "could not reach") {
		t.Errorf("a refusal reads as unreachable:\n%s", r)
	}
	// Wrong password: refused too (the token service said 401).
	r = u.cmd.WithEnv(notaryAuth("alice", "wrong")).Fail(t, s.signet, "-s", "https://"+s.addr, "--tlscacert", s.caFile, "-d", bare, "list", gun)
	e2etest.WantOutput(t, r, "refused the request", "401")
	// Malformed NOTARY_AUTH: said so.
	r = u.cmd.WithEnv("NOTARY_AUTH=alice:plain").Fail(t, s.signet, "-s", "https://"+s.addr, "--tlscacert", s.caFile, "-d", bare, "list", gun)
	e2etest.WantOutput(t, r, "NOTARY_AUTH must be base64 of user:password")
	// Nobody listening: could not reach.
	r = alice.Fail(t, s.signet, "-s", "https://"+e2etest.FreeAddr(t), "--tlscacert", s.caFile, "-d", bare, "list", gun)
	e2etest.WantOutput(t, r, "could not reach the trust server")

	// A prompt, when stdin is a terminal (cli.Main in-process).
	var out, errOut bytes.Buffer
	env := map[string]string{"HOME": u.home}
	code := cli.Main(context.Background(), append(conn[:4:4], "-d", filepath.Join(u.home, "prompted"), "list", gun), cli.Env{
		Getenv: func(k string) string { return env[k] }, Stdin: strings.NewReader("alice\n"), Stdout: &out, Stderr: &errOut,
		Terminal: true, ReadPassword: func() ([]byte, error) { return []byte(password("alice")), nil },
	})
	if code != 0 || !strings.Contains(out.String(), "v1") || !strings.Contains(errOut.String(), "Username: ") {
		t.Errorf("list with a prompt: exit %d\n%s\n%s", code, &out, &errOut)
	}

	// Rotating the snapshot key onto the server needs "*": alice is
	// refused, root (an admin) may.
	r = alice.Fail(t, signet("key", "rotate", gun, "snapshot", "-r")...)
	e2etest.WantOutput(t, r, "refused")
	u.cmd.WithEnv(notaryAuth("root", password("root"))).OK(t, signet("key", "rotate", gun, "snapshot", "-r")...)
}
