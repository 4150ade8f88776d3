package servercmd_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/signet-trust/signet/internal/servercmd"
)

func writeHtpasswd(t *testing.T, dir string, users ...string) string {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(u + ":" + string(h) + "\n")
	}
	p := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuthBuiltinTokenService(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfgFile := filepath.Join(dir, "signet.yaml")
	yaml := "auth:\n" +
		"  type: token\n" +
		"  realm: https://signet.example:4443/auth/token\n" +
		"  service: signet\n" +
		"  issuer: signet-issuer\n" +
		"  htpasswd: " + writeHtpasswd(t, dir, "alice", "root") + "\n" +
		"  admins: [root]\n" +
		"  audiences: [signet, registry]\n" +
		"  token_ttl: 10m\n"
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startMain(t, []string{"--config", cfgFile, "--listen", "127.0.0.1:0", "--data-dir", dataDir},
		map[string]string{"SIGNET_KEY_PASSPHRASE": "pw"})
	c := client(t, filepath.Join(dataDir, "tls", "ca.crt"))
	base := "https://" + r.addr

	// No token: the reference's challenge, naming the configured realm.
	resp, err := c.Get(base + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := `Bearer realm="https://signet.example:4443/auth/token",service="signet",scope="registry:catalog:*"`; resp.StatusCode != 401 || resp.Header.Get("Www-Authenticate") != want {
		t.Errorf("GET /v2/: %d %q, want 401 %q", resp.StatusCode, resp.Header.Get("Www-Authenticate"), want)
	}
	// Health stays open.
	if h := get(t, c, base+"/_notary_server/health"); h.status != 200 {
		t.Errorf("health: %d", h.status)
	}

	token := func(user, scope string) (string, int) {
		req, _ := http.NewRequest("GET", base+"/auth/token?service=signet&scope="+scope, nil)
		req.SetBasicAuth(user, user+"-pw")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tr struct {
			Token     string `json:"token"`
			ExpiresIn int    `json:"expires_in"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&tr)
		if resp.StatusCode == 200 && tr.ExpiresIn != 600 {
			t.Errorf("expires_in %d, want 600 (token_ttl)", tr.ExpiresIn)
		}
		return tr.Token, resp.StatusCode
	}
	call := func(method, path, tok string) int {
		req, _ := http.NewRequest(method, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	userTok, code := token("alice", "repository:"+testGUN+":push,pull,*")
	if code != 200 {
		t.Fatalf("token for alice: %d", code)
	}
	if got := call("GET", "/v2/"+testGUN+"/_trust/tuf/timestamp.key", userTok); got != 200 {
		t.Errorf("GET timestamp.key with a push,pull token: %d", got)
	}
	if got := call("DELETE", "/v2/"+testGUN+"/_trust/tuf/", userTok); got != 401 {
		t.Errorf("DELETE with a user token: %d, want 401", got)
	}
	adminTok, _ := token("root", "repository:"+testGUN+":*")
	if got := call("DELETE", "/v2/"+testGUN+"/_trust/tuf/", adminTok); got != 200 {
		t.Errorf("DELETE with an admin token: %d, want 200", got)
	}
	if _, code := token("mallory", ""); code != 401 {
		t.Errorf("unknown user: %d, want 401", code)
	}
	// The generated signing certificate is what a registry trusts.
	wantMode(t, filepath.Join(dataDir, "auth", "token-signing.key"), 0o600)
	if b := readFile(t, filepath.Join(dataDir, "auth", "token-signing.crt")); !strings.Contains(string(b), "BEGIN CERTIFICATE") {
		t.Errorf("token-signing.crt: %s", b)
	}
	if code := r.stop(); code != 0 {
		t.Fatalf("exit %d\n%s", code, r.stderr)
	}
}

func TestBadAuthConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	htpasswd := writeHtpasswd(t, dir, "alice")
	tests := []struct {
		name, yaml, want string
	}{
		{"wrong type", "type: htpasswd\nservice: s\nissuer: i\nrealm: https://x/\nrootcertbundle: " + htpasswd, `auth: type "htpasswd": the only type is token`},
		{"no service", "type: token\nissuer: i\nhtpasswd: " + htpasswd, "auth: service is required"},
		{"no issuer", "type: token\nservice: s\nhtpasswd: " + htpasswd, "auth: issuer is required"},
		{"no keys", "type: token\nservice: s\nissuer: i\nrealm: https://x/", "auth: no trusted token signing key"},
		{"no realm", "type: token\nservice: s\nissuer: i\njwks: " + htpasswd, "auth: realm is required"},
		{"realm not a URL", "type: token\nservice: s\nissuer: i\nrealm: x\njwks: " + htpasswd, `auth: realm "x"`},
		{"port 0 realm", "type: token\nservice: s\nissuer: i\nhtpasswd: " + htpasswd, "cannot derive it from a listen address with port 0"},
		{"admins without htpasswd", "type: token\nservice: s\nissuer: i\nrealm: https://x/\njwks: " + htpasswd + "\nadmins: [a]", "need htpasswd"},
		{"missing file", "type: token\nservice: s\nissuer: i\nrealm: https://x/\nrootcertbundle: /nonexistent/b.pem", "auth: rootcertbundle: stat /nonexistent/b.pem"},
		{"key without cert", "type: token\nservice: s\nissuer: i\nrealm: https://x/\nhtpasswd: " + htpasswd + "\nsigning_key: " + htpasswd, "signing_key and signing_cert go together"},
		{"ttl", "type: token\nservice: s\nissuer: i\nrealm: https://x/\nhtpasswd: " + htpasswd + "\ntoken_ttl: 5s", "token_ttl 5s: between 1m and 24h"},
		{"audiences without service", "type: token\nservice: s\nissuer: i\nrealm: https://x/\nhtpasswd: " + htpasswd + "\naudiences: [registry]", `must include this server's service "s"`},
		{"anonymous_pull for an unknown service", "type: token\nservice: s\nissuer: i\nrealm: https://x/\nhtpasswd: " + htpasswd + "\nanonymous_pull: [registry]", `anonymous_pull "registry": not a service`},
		{"unknown key", "type: token\nservice: s\nissuer: i\nrealm: https://x/\nhtpasswd: " + htpasswd + "\nadmin: [x]", "field admin not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "c.yaml")
			indented := "auth:\n  " + strings.ReplaceAll(tt.yaml, "\n", "\n  ") + "\n"
			if err := os.WriteFile(cfg, []byte(indented), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr syncBuffer
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			args := []string{"--data-dir", filepath.Join(t.TempDir(), "data"), "--listen", "127.0.0.1:0", "--config", cfg}
			if code := servercmd.Main(ctx, args, envMap(nil), &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2\nstderr:\n%s", code, &stderr)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr does not say %q:\n%s", tt.want, &stderr)
			}
		})
	}
}
