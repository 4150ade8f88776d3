package admission

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const goodPolicy = `# a policy
trust_server: https://signet.example:4443
registries:
  registry.example:
    username: robot
    password: secret
audit:
  url: https://signet.example:4443
  token: t0ken
default: admit
cache:
  ttl: 30s
  max_stale: 10m
namespaces:
  - name: "*"
    mode: warn
    rules:
      - images: "registry.example/**"
        dct: {signers: [ci]}
  - name: prod
    mode: enforce
    break_glass: true
    default: deny
    rules:
      - images: "registry.example/*/*"
        dct: {signers: [ci]}
      - images: "registry.example/team/*"
        dct: {signers: [alice, ci], threshold: 1, releases: must_agree}
      - images: "registry.example/team/app"
        dct: {signers: [alice]}
      - images: "registry.example/**"
        dct: {signers: [ci]}
  - name: "prod-*"
    rules:
      - images: "docker.io/library/*"
        dct: {signers: [ci]}
`

func TestParseConfig(t *testing.T) {
	p, err := Load([]byte(goodPolicy), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Namespaces: an exact name, then the longer glob, then "*".
	if got := p.Namespaces(); !slices.Equal(got, []string{"prod", "prod-*", "*"}) {
		t.Errorf("namespace order %q", got)
	}
	// Rules: the most literal characters first; "**" after "*".
	want := []string{"registry.example/team/app", "registry.example/team/*", "registry.example/*/*", "registry.example/**"}
	if got := p.Rules("prod"); !slices.Equal(got, want) {
		t.Errorf("rule order %q, want %q", got, want)
	}
	for ns, want := range map[string]string{"prod": "prod", "prod-eu": "prod-*", "dev": "*", "production": "*"} {
		if got := p.namespaceFor(ns); got == nil || got.name != want {
			t.Errorf("namespace %s → %v, want %s", ns, got, want)
		}
	}
	np := p.namespaceFor("prod")
	for repo, want := range map[string]string{
		"registry.example/team/app":   "registry.example/team/app",
		"registry.example/team/web":   "registry.example/team/*",
		"registry.example/other/x":    "registry.example/*/*",
		"registry.example/a/b/c":      "registry.example/**",
		"registry.example/team/app/x": "registry.example/**",
		"elsewhere.example/team/app":  "",
	} {
		r := np.ruleFor(repo)
		got := ""
		if r != nil {
			got = r.pattern
		}
		if got != want {
			t.Errorf("%s → rule %q, want %q", repo, got, want)
		}
	}
	if np.noMatch != NoMatchDeny || p.namespaceFor("dev").noMatch != NoMatchAdmit || np.mode != ModeEnforce || !np.breakGlass {
		t.Errorf("prod settings %+v", np)
	}
	if p.cfg.Cache.TTL.D() != 30*time.Second || p.cfg.Cache.MaxStale.D() != 10*time.Minute || p.cfg.Timeout.D() != 8*time.Second || p.cfg.Cache.MaxEntries != 10000 {
		t.Errorf("cache %+v timeout %v", p.cfg.Cache, p.cfg.Timeout.D())
	}
	if c, _ := p.keychain.Credentials(t.Context(), "Registry.Example"); c.Username != "robot" || c.Password != "secret" {
		t.Errorf("credentials %+v", c)
	}
}

func TestParseConfigErrors(t *testing.T) {
	base := "trust_server: https://signet.example\nnamespaces:\n  - name: prod\n    rules:\n      - images: \"r.example/*\"\n        dct: {signers: [alice]}\n"
	for _, c := range []struct {
		name, yaml string
		line       int
		want       string
	}{
		{"empty", "", 0, "empty"},
		{"not a mapping", "- a\n", 1, "must be a mapping"},
		{"unknown top key", "trust_server: https://s.example\nnamespace: []\n", 2, `no setting "namespace"`},
		{"unknown rule key", strings.Replace(base, "dct:", "dtc:", 1), 6, `a rule has no setting "dtc"`},
		{"unknown dct key", strings.Replace(base, "signers:", "signer:", 1), 6, `dct has no setting "signer"`},
		{"bad mode", strings.Replace(base, "  - name: prod\n", "  - name: prod\n    mode: enforcing\n", 1), 3, `mode "enforcing": want enforce, warn or audit`},
		{"bad default", "default: allow\n", 1, `default "allow"`},
		{"http server", strings.Replace(base, "https://", "http://", 1), 1, "not an https://host"},
		{"no server", strings.Replace(base, "trust_server: https://signet.example\n", "", 1), 1, "trust_server is required"},
		{"releases signer", strings.Replace(base, "[alice]", "[releases]", 1), 6, "never a required signer"},
		{"no signers", strings.Replace(base, "{signers: [alice]}", "{threshold: 1}", 1), 6, "signers are required"},
		{"threshold", strings.Replace(base, "[alice]}", "[alice], threshold: 2}", 1), 6, "threshold 2"},
		{"releases mode", strings.Replace(base, "[alice]}", "[alice], releases: sometimes}", 1), 6, `releases "sometimes"`},
		{"tag in glob", strings.Replace(base, "r.example/*", "r.example/app:v1", 1), 5, "not tags"},
		{"no requirement", strings.Replace(base, "        dct: {signers: [alice]}\n", "", 1), 5, "requires nothing"},
		{"no images", strings.Replace(base, `images: "r.example/*"`, `images: ""`, 1), 5, "needs images"},
		{"bad ns glob", strings.Replace(base, "name: prod", "name: \"[\"", 1), 3, "not a valid glob"},
		{"duplicate ns", base + "  - name: prod\n", 7, "already given at line 3"},
		{"duplicate key", "trust_server: https://a.example\ntrust_server: https://b.example\n", 2, "twice"},
		{"bad duration", "cache: {ttl: soon}\n", 1, `"soon" is not a duration`},
		{"timeout too long", "timeout: 30s\n", 1, "at most 9s"},
		{"wrong type", "cache: {max_entries: many}\n", 1, "cannot unmarshal"},
		{"audit without token", "audit: {url: https://a.example}\n", 1, "token"},
		{"two documents", "default: admit\n---\ndefault: deny\n", 2, "more than one YAML document"},
		{"cosign without keys", strings.Replace(base, "dct: {signers: [alice]}", "cosign: {keys: []}", 1), 6, "cosign needs keys"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", c.yaml)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to say %q", err, c.want)
			}
			if c.line > 0 {
				var le *LineError
				if !errors.As(err, &le) && !strings.Contains(err.Error(), "line ") {
					t.Fatalf("error %q names no line", err)
				}
				if le != nil && le.Line != c.line {
					t.Errorf("error %q at line %d, want %d", err, le.Line, c.line)
				}
				if le == nil && !strings.Contains(err.Error(), "line "+strconv.Itoa(c.line)+":") {
					t.Errorf("error %q, want line %d", err, c.line)
				}
			}
		})
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	policy := "trust_server: https://s.example\ntrust_ca: ca.pem\nnamespaces:\n  - name: p\n    rules:\n      - images: \"r.example/*\"\n        dct: {signers: [a], root_key: root.crt}\n"
	if _, err := Load([]byte(policy), dir); err == nil || !strings.Contains(err.Error(), "line 1: trust_ca") {
		t.Fatalf("missing CA: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load([]byte(policy), dir); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Fatalf("bad CA: %v", err)
	}
	ca := selfSigned(t)
	os.WriteFile(filepath.Join(dir, "ca.pem"), ca, 0o600)
	if _, err := Load([]byte(policy), dir); err == nil || !strings.Contains(err.Error(), "line 7: root_key") {
		t.Fatalf("missing root key: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "root.crt"), ca, 0o600)
	p, err := Load([]byte(policy), dir)
	if err != nil {
		t.Fatal(err)
	}
	r := p.namespaceFor("p").ruleFor("r.example/x")
	if r == nil || r.dct.pinKey == "" || len(r.dct.pinning.RootKeys) != 1 {
		t.Fatalf("root key not pinned: %+v", r)
	}
	cos := "trust_server: https://s.example\nnamespaces:\n  - name: p\n    rules:\n      - images: \"r.example/*\"\n        cosign: {keys: [root.crt, missing.pub]}\n"
	if _, err := Load([]byte(cos), dir); err == nil || !strings.Contains(err.Error(), "line 6: cosign key") || !strings.Contains(err.Error(), "missing.pub") {
		t.Fatalf("missing cosign key: %v", err)
	}
}

func TestImages(t *testing.T) {
	for _, c := range []struct{ in, repo, tag, digest, pinned string }{
		{"nginx", "docker.io/library/nginx", "latest", "", "nginx@sha256:" + strings.Repeat("a", 64)},
		{"nginx:1.25", "docker.io/library/nginx", "1.25", "", "nginx@sha256:" + strings.Repeat("a", 64)},
		{"localhost:5000/team/app:v1", "localhost:5000/team/app", "v1", "", "localhost:5000/team/app@sha256:" + strings.Repeat("a", 64)},
		{"localhost:5000/team/app", "localhost:5000/team/app", "latest", "", "localhost:5000/team/app@sha256:" + strings.Repeat("a", 64)},
		{"r.example/app:v1@sha256:" + strings.Repeat("b", 64), "r.example/app", "v1", "sha256:" + strings.Repeat("b", 64), "r.example/app@sha256:" + strings.Repeat("a", 64)},
		{"r.example/app@sha256:" + strings.Repeat("b", 64), "r.example/app", "", "sha256:" + strings.Repeat("b", 64), "r.example/app@sha256:" + strings.Repeat("a", 64)},
	} {
		img, err := parseImage(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if img.repo() != c.repo || img.ref.Tag != c.tag || img.ref.Digest != c.digest || img.pinned("sha256:"+strings.Repeat("a", 64)) != c.pinned {
			t.Errorf("%s: repo %s tag %s digest %s pinned %s", c.in, img.repo(), img.ref.Tag, img.ref.Digest, img.pinned("sha256:"+strings.Repeat("a", 64)))
		}
	}
	for _, bad := range []string{"", " nginx", "UPPER/case", "r.example/app@sha256:short", "a:b:c"} {
		if _, err := parseImage(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestGlobs(t *testing.T) {
	for _, c := range []struct {
		glob, repo string
		want       bool
	}{
		{"r.example/team/*", "r.example/team/app", true},
		{"r.example/team/*", "r.example/team/app/sub", false},
		{"r.example/team/**", "r.example/team/app/sub", true},
		{"r.example/team/ap?", "r.example/team/app", true},
		{"r.example/team/app", "r.example/team/apps", false},
		{"r.example/team.app", "r.example/teamxapp", false},
		{"**", "anything/at/all", true},
	} {
		re, err := compileGlob(c.glob)
		if err != nil {
			t.Fatal(err)
		}
		if got := re.MatchString(c.repo); got != c.want {
			t.Errorf("%s ~ %s = %v", c.glob, c.repo, got)
		}
	}
}

// selfSigned is a PEM certificate, as a repository's root key and as a CA.
func selfSigned(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "r.example/x"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
