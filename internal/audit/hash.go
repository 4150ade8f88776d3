package audit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// HashSize is the size of a Merkle tree hash (SHA-256).
const HashSize = sha256.Size

// Hash is an RFC 6962 Merkle tree hash: of a leaf, an interior node or a
// tree.
type Hash [HashSize]byte

// String returns the hash in standard base64, as checkpoints carry it.
func (h Hash) String() string { return base64.StdEncoding.EncodeToString(h[:]) }

// Hex returns the hash in lowercase hex.
func (h Hash) Hex() string { return hex.EncodeToString(h[:]) }

// ParseHash reads a hash in standard base64 or in hex.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) == 2*HashSize {
		if _, err := hex.Decode(h[:], []byte(s)); err == nil {
			return h, nil
		}
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != HashSize {
		return Hash{}, fmt.Errorf("audit: %q is not a SHA-256 hash in base64 or hex", s)
	}
	copy(h[:], b)
	return h, nil
}

// EmptyRoot is the root hash of the empty tree: SHA-256 of nothing.
var EmptyRoot = Hash(sha256.Sum256(nil))

// LeafHash returns the hash of a leaf: SHA-256(0x00 ‖ entry).
func LeafHash(entry []byte) Hash {
	d := sha256.New()
	d.Write([]byte{0})
	d.Write(entry)
	var h Hash
	d.Sum(h[:0])
	return h
}

// NodeHash returns the hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
func NodeHash(left, right Hash) Hash {
	var b [1 + 2*HashSize]byte
	b[0] = 1
	copy(b[1:], left[:])
	copy(b[1+HashSize:], right[:])
	return sha256.Sum256(b[:])
}

// hashChildren is NodeHash for the merkle library's byte slices.
func hashChildren(left, right []byte) []byte {
	h := NodeHash(Hash(left), Hash(right))
	return h[:]
}

// hashAt returns the i-th hash of concatenated hashes.
func hashAt(hashes []byte, i int) Hash {
	return Hash(hashes[i*HashSize : (i+1)*HashSize])
}
