package custody

import "testing"

func TestKDF(t *testing.T) {
	if kdfScrypt != "scrypt-n32768-r8-p1" || legacyKDF != kdfScrypt {
		t.Fatalf("default KDF %s, legacy %s", kdfScrypt, legacyKDF)
	}
	if _, err := deriveKEK([]byte("p"), make([]byte, saltSize), kdfScrypt); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"scrypt-n16-r8-p1", "pbkdf2", "scrypt-n32768-r8-p1x", "scrypt-n032768-r8-p1", "scrypt-n8388608-r8-p1", ""} {
		if _, err := deriveKEK([]byte("p"), make([]byte, saltSize), bad); err == nil {
			t.Errorf("kdf %q accepted", bad)
		}
	}
}
