//go:build !pkcs11

package cli

import (
	"strings"
	"testing"
)

// TestCosignNoPKCS11: a build without -tags pkcs11 says why a pkcs11: key
// cannot sign, before reaching the registry.
func TestCosignNoPKCS11(t *testing.T) {
	u := cosignUser(t)
	code, _, errOut := u.run("cosign", "sign", "--key", "pkcs11:token=t;object=k?module-path=/usr/lib/softhsm/libsofthsm2.so", "127.0.0.1:1/team/app:v1")
	if code != ExitUsage || !strings.Contains(errOut, "built without PKCS#11") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
}
