package cli

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/signet-trust/signet/internal/policy"
)

// TestTrustPinningConfig: config.json's trust_pinning becomes the policy's
// Pinning, which the Reader applies (internal/policy and internal/client
// test the rules): key IDs by GUN or "prefix*", CA files relative to the
// configuration file, disable_tofu.
func TestTrustPinningConfig(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config.json")
	cfg := `{"trust_pinning": {
		"certs": {"example.com/pinned/*": ["abc"], "example.com/exact/app": ["def", "ghi"]},
		"ca": {"example.com/": "ca.pem", "other.com/": "/abs/ca.pem"},
		"disable_tofu": true}}`
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	a := newApp(Env{Getenv: func(k string) string { return map[string]string{"HOME": dir}[k] }})
	a.configFile = cfgFile
	s, err := a.notarySettings()
	if err != nil {
		t.Fatal(err)
	}
	p := s.trustPinning()
	if !p.DisableTOFU || p.CA["example.com/"] != filepath.Join(dir, "ca.pem") || p.CA["other.com/"] != "/abs/ca.pem" {
		t.Fatalf("pinning %+v", p)
	}
	for gun, want := range map[string]policy.PinRule{
		"example.com/pinned/app": {Mode: policy.PinCerts, Pattern: "example.com/pinned/*", KeyIDs: []string{"abc"}},
		"example.com/exact/app":  {Mode: policy.PinCerts, Pattern: "example.com/exact/app", KeyIDs: []string{"def", "ghi"}},
		"example.com/other":      {Mode: policy.PinCA, Pattern: "example.com/", CAFile: filepath.Join(dir, "ca.pem")},
		"docker.io/library/x":    {Mode: policy.PinTOFU, DisableTOFU: true},
	} {
		r := p.Rule(gun)
		if r.Mode != want.Mode || r.Pattern != want.Pattern || !slices.Equal(r.KeyIDs, want.KeyIDs) || r.CAFile != want.CAFile || r.DisableTOFU != want.DisableTOFU {
			t.Errorf("%s: rule %+v, want %+v", gun, r, want)
		}
	}
	if p := (&settings{}).trustPinning(); p.Rule("example.com/a").Pins() {
		t.Fatal("no configuration should mean trust on first use")
	}
}
