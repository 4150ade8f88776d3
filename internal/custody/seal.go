package custody

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"

	"golang.org/x/crypto/scrypt"
)

// Envelope encryption. Each private key (PKCS#8) is sealed with its own
// random 256-bit data key (DEK) under AES-256-GCM; the DEK is wrapped with
// AES-256-GCM under the key-encryption key (KEK) of a named passphrase
// alias, derived with scrypt. Both seals carry additional data binding them
// to their record, and a random 96-bit nonce in front of the ciphertext
// (FormatV2):
//
//	sealed      = nonce ‖ GCM(DEK).Seal(pkcs8, "signet-custody-key\0v2\0" id \0 gun \0 role \0 algorithm \0 purpose \0 owner)
//	wrapped_dek = nonce ‖ GCM(KEK(alias)).Seal(DEK, "signet-custody-dek\0v2\0" alias \0 id \0 gun \0 role \0 purpose \0 owner)
//	check_value = nonce ‖ GCM(KEK(alias)).Seal(checkPlain, "signet-signer-alias\0v1\0" alias)
//
// FormatV1 (signet-signer's records of earlier releases) is the same with
// "signet-signer-key\0v1\0" id \0 gun \0 role \0 algorithm and
// "signet-signer-dek\0v1\0" alias \0 id \0 gun \0 role. FormatLegacy (the
// embedded custodian of earlier releases) has no data key:
//
//	sealed = nonce ‖ GCM(legacy KEK).Seal(pkcs8, "signet-key\0" id \0 gun \0 role)
//	legacy settings = salt(32) ‖ nonce ‖ GCM(legacy KEK).Seal(legacyCheckPlain, "kek.scrypt.v1")
//
// Changing the passphrase of a key (rekey) rewrites only wrapped_dek.
const (
	dekSize    = 32
	saltSize   = 32
	checkPlain = "signet-signer key-encryption key check v1"
	// kdfScrypt names the derivation and its cost: N=2^15, r=8, p=1 (about
	// 32 MiB and tens of milliseconds, paid once per alias and process).
	kdfScrypt = "scrypt-n32768-r8-p1"

	legacyCheckPlain = "signet key-encryption key check v1"
	legacyCheckAD    = "kek.scrypt.v1"
	legacyKDF        = kdfScrypt
)

// parseKDF reads a key derivation's name: scrypt and its cost.
func parseKDF(kdf string) (n, r, p int, err error) {
	if _, err := fmt.Sscanf(kdf, "scrypt-n%d-r%d-p%d", &n, &r, &p); err != nil ||
		fmt.Sprintf("scrypt-n%d-r%d-p%d", n, r, p) != kdf || n < 1<<10 || n > 1<<22 || r < 1 || r > 32 || p < 1 || p > 16 {
		return 0, 0, 0, fmt.Errorf("custody: unknown key derivation %q", kdf)
	}
	return n, r, p, nil
}

func deriveKEK(passphrase, salt []byte, kdf string) (cipher.AEAD, error) {
	n, r, p, err := parseKDF(kdf)
	if err != nil {
		return nil, err
	}
	k, err := scrypt.Key(passphrase, salt, n, r, p, 32)
	if err != nil {
		return nil, fmt.Errorf("custody: derive key: %w", err)
	}
	return newGCM(k)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func random(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("custody: no randomness: " + err.Error())
	}
	return b
}

func seal(aead cipher.AEAD, plain, ad []byte) []byte {
	nonce := random(aead.NonceSize())
	return aead.Seal(nonce, nonce, plain, ad)
}

// open authenticates and decrypts; any failure is ErrTampered.
func open(aead cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	n := aead.NonceSize()
	if len(sealed) < n+aead.Overhead() {
		return nil, ErrTampered
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrTampered
	}
	return plain, nil
}

func join(fields ...string) []byte {
	var b []byte
	for i, f := range fields {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, f...)
	}
	return b
}

// keyAD is the additional data of a sealed private key in format.
func keyAD(format int, r Record) []byte {
	if format == FormatV1 {
		return join("signet-signer-key", "v1", r.ID, r.GUN, r.Role, r.Algorithm)
	}
	return join("signet-custody-key", "v2", r.ID, r.GUN, r.Role, r.Algorithm, string(r.Purpose), r.Owner)
}

// dekAD is the additional data of a data key wrapped under alias.
func dekAD(format int, alias string, r Record) []byte {
	if format == FormatV1 {
		return join("signet-signer-dek", "v1", alias, r.ID, r.GUN, r.Role)
	}
	return join("signet-custody-dek", "v2", alias, r.ID, r.GUN, r.Role, string(r.Purpose), r.Owner)
}

func legacyKeyAD(r Record) []byte {
	return []byte("signet-key\x00" + r.ID + "\x00" + r.GUN + "\x00" + r.Role)
}

func checkAD(alias string) []byte { return join("signet-signer-alias", "v1", alias) }
