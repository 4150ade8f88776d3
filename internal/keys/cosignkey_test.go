package keys

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
)

// cosignFixture is a key pair `cosign generate-key-pair` (v3.1.3) wrote
// with COSIGN_PASSWORD=test.
const cosignFixture = "../oci/testdata/cosign-v3.1.3/"

func readCosignFixture(t testing.TB) (key, pub []byte) {
	t.Helper()
	key, err := os.ReadFile(cosignFixture + "cosign.key")
	if err != nil {
		t.Fatal(err)
	}
	pub, err = os.ReadFile(cosignFixture + "cosign.pub")
	if err != nil {
		t.Fatal(err)
	}
	return key, pub
}

func TestParseCosignPrivateKeyPEM(t *testing.T) {
	key, pubPEM := readCosignFixture(t)
	if !IsCosignPrivateKeyPEM(key) || IsCosignPrivateKeyPEM(pubPEM) {
		t.Fatal("IsCosignPrivateKeyPEM does not tell the key from the public key")
	}
	k, err := ParseCosignPrivateKeyPEM(key, Passphrase([]byte("test")))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pubPEM)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
		t.Fatal("the decrypted key is not cosign.pub's")
	}

	// A wrong password is reported as such, after every attempt.
	tries := 0
	_, err = ParseCosignPrivateKeyPEM(key, func(attempt int) ([]byte, error) {
		tries++
		if attempt == 2 {
			return nil, ErrWrongPassphrase
		}
		return []byte("wrong"), nil
	})
	if !errors.Is(err, ErrWrongPassphrase) || tries != 3 {
		t.Fatalf("wrong password: %v after %d tries", err, tries)
	}
	if _, err := ParseCosignPrivateKeyPEM(key, nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Fatalf("no passphrase: %v", err)
	}
	// Not a cosign key file.
	if _, err := ParseCosignPrivateKeyPEM(pubPEM, Passphrase(nil)); !errors.Is(err, ErrInvalidKeyFile) {
		t.Fatalf("public key: %v", err)
	}
}

// TestCosignKeyFileTampering: the JSON inside the PEM is checked before any
// passphrase is tried (scrypt parameters especially: a file must not make
// the reader spend unbounded memory), and a modified box does not open.
func TestCosignKeyFileTampering(t *testing.T) {
	key, _ := readCosignFixture(t)
	block, _ := pem.Decode(key)
	var doc map[string]any
	if err := json.Unmarshal(block.Bytes, &doc); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		edit func(m map[string]any)
		want error
	}{
		"scrypt N=2^24": {func(m map[string]any) { m["kdf"].(map[string]any)["params"].(map[string]any)["N"] = 1 << 24 }, ErrInvalidKeyFile},
		"scrypt r=1":    {func(m map[string]any) { m["kdf"].(map[string]any)["params"].(map[string]any)["r"] = 1 }, ErrInvalidKeyFile},
		"kdf pbkdf2":    {func(m map[string]any) { m["kdf"].(map[string]any)["name"] = "pbkdf2" }, ErrInvalidKeyFile},
		"cipher aes":    {func(m map[string]any) { m["cipher"].(map[string]any)["name"] = "aes-gcm" }, ErrInvalidKeyFile},
		"short nonce":   {func(m map[string]any) { m["cipher"].(map[string]any)["nonce"] = "AAAA" }, ErrInvalidKeyFile},
		"no salt":       {func(m map[string]any) { delete(m["kdf"].(map[string]any), "salt") }, ErrInvalidKeyFile},
		"flipped box": {func(m map[string]any) {
			ct, _ := base64.StdEncoding.DecodeString(m["ciphertext"].(string))
			ct[len(ct)/2] ^= 1
			m["ciphertext"] = base64.StdEncoding.EncodeToString(ct)
		}, ErrWrongPassphrase},
	} {
		t.Run(name, func(t *testing.T) {
			var m map[string]any
			b, _ := json.Marshal(doc)
			_ = json.Unmarshal(b, &m)
			tc.edit(m)
			b, _ = json.Marshal(m)
			data := pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: b})
			if _, err := ParseCosignPrivateKeyPEM(data, Passphrase([]byte("test"))); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMarshalCosignPrivateKeyPEM(t *testing.T) {
	// scrypt is slow (more so under -race): one passphrase per key type,
	// and the empty passphrase cosign allows for one of them.
	for name, s := range testKeys(t) {
		if name == "ecdsa-p384" {
			continue // same code path as P-256
		}
		t.Run(name, func(t *testing.T) {
			passes := []string{"s3cret"}
			if name == "ecdsa-p256" {
				passes = append(passes, "")
			}
			for _, pass := range passes {
				out, err := MarshalCosignPrivateKeyPEM(s, []byte(pass))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(string(out), "-----BEGIN "+PEMCosignPrivateKey+"-----") {
					t.Fatalf("PEM type: %s", out[:40])
				}
				k, err := ParseCosignPrivateKeyPEM(out, Passphrase([]byte(pass)))
				if err != nil {
					t.Fatal(err)
				}
				if !s.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
					t.Fatal("round trip changed the key")
				}
				if pass != "" && name == "ecdsa-p256" {
					if _, err := ParseCosignPrivateKeyPEM(out, Passphrase(nil)); !errors.Is(err, ErrWrongPassphrase) {
						t.Fatalf("empty passphrase opened a protected file: %v", err)
					}
				}
			}
		})
	}
	// The old PEM type reads the same.
	out, err := MarshalCosignPrivateKeyPEM(testKeys(t)["ecdsa-p256"], []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	old := bytes.Replace(out, []byte(PEMCosignPrivateKey), []byte(PEMCosignPrivateKeyV1), 2)
	if _, err := ParseCosignPrivateKeyPEM(old, Passphrase([]byte("x"))); err != nil {
		t.Fatalf("%s: %v", PEMCosignPrivateKeyV1, err)
	}
}

func FuzzParseCosignPrivateKeyPEM(f *testing.F) {
	key, _ := readCosignFixture(f)
	f.Add(key)
	block, _ := pem.Decode(key)
	f.Add(block.Bytes)
	f.Fuzz(func(t *testing.T, data []byte) {
		inputs := [][]byte{data, pem.EncodeToMemory(&pem.Block{Type: PEMCosignPrivateKey, Bytes: data})}
		for _, in := range inputs {
			k, err := ParseCosignPrivateKeyPEM(in, Passphrase([]byte("test")))
			if err != nil {
				for _, sentinel := range []error{ErrInvalidKeyFile, ErrWrongPassphrase, ErrUnsupportedKey, ErrInvalidKey} {
					if errors.Is(err, sentinel) {
						goto next
					}
				}
				t.Fatalf("error outside the sentinels: %v", err)
			}
			if _, err := FromCrypto(k.Public()); err != nil {
				t.Fatalf("parsed a key without a usable public key: %v", err)
			}
		next:
		}
	})
}
