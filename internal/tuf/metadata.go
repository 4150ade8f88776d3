package tuf

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"time"

	"github.com/signet-trust/signet/internal/keys"
)

// Signature is one entry of a file's "signatures".
type Signature struct {
	KeyID  string `json:"keyid"`
	Method string `json:"method"`
	Sig    []byte `json:"sig"`
}

// Common holds the fields every signed role object has.
type Common struct {
	Type    string    `json:"_type"`
	Expires time.Time `json:"expires"`
	Version int       `json:"version"`
}

// RoleKeys names the keys of a role and how many must sign.
type RoleKeys struct {
	KeyIDs    []string `json:"keyids"`
	Threshold int      `json:"threshold"`
}

// Root is the signed object of root.json.
type Root struct {
	Common
	ConsistentSnapshot bool                       `json:"consistent_snapshot"`
	Keys               map[string]*keys.PublicKey `json:"keys"`
	Roles              map[string]*RoleKeys       `json:"roles"`
}

// FileMeta describes a file by length and hashes; Custom is opaque JSON.
type FileMeta struct {
	Length int64             `json:"length"`
	Hashes map[string][]byte `json:"hashes"`
	Custom *json.RawMessage  `json:"custom,omitempty"`
}

// DelegatedRole is one entry of a targets file's delegations.
type DelegatedRole struct {
	Name      string   `json:"name"`
	KeyIDs    []string `json:"keyids"`
	Threshold int      `json:"threshold"`
	Paths     []string `json:"paths,omitempty"`
}

// Delegations lists the keys and roles a targets file delegates to.
type Delegations struct {
	Keys  map[string]*keys.PublicKey `json:"keys"`
	Roles []*DelegatedRole           `json:"roles"`
}

// Targets is the signed object of targets.json and of every delegation.
type Targets struct {
	Common
	Targets     map[string]FileMeta `json:"targets"`
	Delegations Delegations         `json:"delegations"`
}

// Snapshot is the signed object of snapshot.json.
type Snapshot struct {
	Common
	Meta map[string]FileMeta `json:"meta"`
}

// Timestamp is the signed object of timestamp.json.
type Timestamp struct {
	Common
	Meta map[string]FileMeta `json:"meta"`
}

// Meta is one parsed metadata file.
type Meta[T any] struct {
	Role       string
	Raw        []byte          // the whole file, as given
	SignedRaw  json.RawMessage // the "signed" value, as given
	Signatures []Signature
	Signed     T

	// canonical is what signatures are verified over: the canonical form of
	// SignedRaw as Notary computes it (SignedRaw itself when it already is
	// canonical, as every file Notary writes); canonErr is why there is
	// none.
	canonical []byte
	canonErr  error
}

// Common returns the _type, expiry and version of any role object.
func (m *Meta[T]) Common() Common {
	switch s := any(&m.Signed).(type) {
	case *Root:
		return s.Common
	case *Targets:
		return s.Common
	case *Snapshot:
		return s.Common
	case *Timestamp:
		return s.Common
	}
	return Common{}
}

// FileMeta returns the length and SHA-256/SHA-512 hashes of the file.
func (m *Meta[T]) FileMeta() FileMeta { return NewFileMeta(m.Raw) }

// NewFileMeta hashes data as Notary does for metadata: length, sha256 and
// sha512.
func NewFileMeta(data []byte) FileMeta {
	s256 := sha256.Sum256(data)
	s512 := sha512.Sum512(data)
	return FileMeta{Length: int64(len(data)), Hashes: map[string][]byte{"sha256": s256[:], "sha512": s512[:]}}
}

// Equal reports whether two file metas have the same length and hashes
// (custom data is not compared).
func (f FileMeta) Equal(o FileMeta) bool {
	if f.Length != o.Length || len(f.Hashes) != len(o.Hashes) {
		return false
	}
	for alg, h := range f.Hashes {
		if !bytes.Equal(h, o.Hashes[alg]) {
			return false
		}
	}
	return true
}

// hashSizes are the algorithms Notary recognises; others are ignored.
var hashSizes = map[string]int{"sha256": sha256.Size, "sha512": sha512.Size}

// knownHashes are the keys of hashSizes, in the order they are checked.
var knownHashes = [...]string{"sha256", "sha512"}

// CheckHashes applies Notary's hash rules: at least one of sha256 and
// sha512, each of the right size; unknown algorithms are ignored. (It looks
// the known algorithms up rather than ranging over the map: a client
// checks every target of a role, and a map iteration costs more than two
// lookups.)
func CheckHashes(h map[string][]byte) error {
	known := 0
	for _, alg := range knownHashes {
		sum, ok := h[alg]
		if !ok {
			continue
		}
		if size := hashSizes[alg]; len(sum) != size {
			return fmt.Errorf("%s hash is %d bytes, want %d", alg, len(sum), size)
		}
		known++
	}
	if known == 0 {
		return fmt.Errorf("no sha256 or sha512 hash")
	}
	return nil
}

// Matches checks data against the file meta: same length, and every known
// hash algorithm present agrees. Only the algorithms listed are computed.
func (f FileMeta) Matches(data []byte) error {
	if int64(len(data)) != f.Length {
		return fmt.Errorf("length %d, want %d", len(data), f.Length)
	}
	if err := CheckHashes(f.Hashes); err != nil {
		return err
	}
	if want, ok := f.Hashes["sha256"]; ok {
		if got := sha256.Sum256(data); !bytes.Equal(got[:], want) {
			return fmt.Errorf("sha256 hash mismatch")
		}
	}
	if want, ok := f.Hashes["sha512"]; ok {
		if got := sha512.Sum512(data); !bytes.Equal(got[:], want) {
			return fmt.Errorf("sha512 hash mismatch")
		}
	}
	return nil
}
