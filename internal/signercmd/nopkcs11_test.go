//go:build !pkcs11

package signercmd_test

import (
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/signercmd"
)

// TestPKCS11NotBuilt: --pkcs11 in a build without the tag says how to get
// one.
func TestPKCS11NotBuilt(t *testing.T) {
	var stdout, stderr syncBuffer
	args := []string{"--tls-cert", "c", "--tls-key", "k", "--client-ca", "ca",
		"--pkcs11", "pkcs11:token=signet-signer?module-path=/usr/lib/softhsm/libsofthsm2.so"}
	if code := signercmd.Main(t.Context(), args, envMap(nil), &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2\n%s", code, &stderr)
	}
	if !strings.Contains(stderr.String(), "built without PKCS#11 support") || !strings.Contains(stderr.String(), "-tags pkcs11") {
		t.Fatalf("stderr does not explain the build:\n%s", &stderr)
	}
}
