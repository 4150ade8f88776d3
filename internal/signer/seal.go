package signer

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
// alias, derived with scrypt. Both seals carry additional data binding
// them to their record, and a random 96-bit nonce in front of the
// ciphertext:
//
//	sealed      = nonce ‖ GCM(DEK).Seal(pkcs8, "signet-signer-key\0v1\0" id \0 gun \0 role \0 algorithm)
//	wrapped_dek = nonce ‖ GCM(KEK(alias)).Seal(DEK, "signet-signer-dek\0v1\0" alias \0 id \0 gun \0 role)
//	check_value = nonce ‖ GCM(KEK(alias)).Seal(checkPlain, "signet-signer-alias\0v1\0" alias)
//
// Changing the passphrase of a key (rekey) rewrites only wrapped_dek.

const (
	dekSize    = 32
	saltSize   = 32
	checkPlain = "signet-signer key-encryption key check v1"
	// kdfScrypt names the derivation and its cost: N=2^15, r=8, p=1 (about
	// 32 MiB and tens of milliseconds, paid once per alias and process).
	kdfScrypt = "scrypt-n32768-r8-p1"
)

// newAliasKDF is the derivation of new aliases (tests make it cheaper; the
// cost is stored with each alias, so existing aliases keep theirs).
var newAliasKDF = kdfScrypt

func deriveKEK(passphrase, salt []byte, kdf string) (cipher.AEAD, error) {
	var n, r, p int
	if _, err := fmt.Sscanf(kdf, "scrypt-n%d-r%d-p%d", &n, &r, &p); err != nil ||
		fmt.Sprintf("scrypt-n%d-r%d-p%d", n, r, p) != kdf || n < 1<<10 || n > 1<<22 || r < 1 || r > 32 || p < 1 || p > 16 {
		return nil, fmt.Errorf("signer: unknown key derivation %q", kdf)
	}
	k, err := scrypt.Key(passphrase, salt, n, r, p, 32)
	if err != nil {
		return nil, fmt.Errorf("signer: derive key: %w", err)
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
		panic("signer: no randomness: " + err.Error())
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

func keyAD(id, gun, role, algorithm string) []byte {
	return []byte("signet-signer-key\x00v1\x00" + id + "\x00" + gun + "\x00" + role + "\x00" + algorithm)
}

func dekAD(alias, id, gun, role string) []byte {
	return []byte("signet-signer-dek\x00v1\x00" + alias + "\x00" + id + "\x00" + gun + "\x00" + role)
}

func checkAD(alias string) []byte {
	return []byte("signet-signer-alias\x00v1\x00" + alias)
}
