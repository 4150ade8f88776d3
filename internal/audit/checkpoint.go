package audit

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is the body of a C2SP tlog-checkpoint: the log's origin, the
// tree size and the root hash at that size. The origin is also the name of
// the key that signs it.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   Hash
	// Extensions are optional further lines; Signet writes none.
	Extensions []string
}

// MaxCheckpointSize bounds a checkpoint note read from the network.
const MaxCheckpointSize = 64 << 10

// Text returns the note text: origin, size and base64 root, one per line,
// then the extension lines, each ended by a newline.
func (c Checkpoint) Text() []byte {
	var b bytes.Buffer
	b.WriteString(c.Origin)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatUint(c.Size, 10))
	b.WriteByte('\n')
	b.WriteString(c.Root.String())
	b.WriteByte('\n')
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ErrBadCheckpoint reports a note text that is not a checkpoint.
var ErrBadCheckpoint = errors.New("audit: malformed checkpoint")

// ParseCheckpoint reads a checkpoint's note text (not the signatures).
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	bad := func(why string) (Checkpoint, error) { return Checkpoint{}, fmt.Errorf("%w: %s", ErrBadCheckpoint, why) }
	if !utf8.Valid(text) {
		return bad("not UTF-8")
	}
	s, ok := strings.CutSuffix(string(text), "\n")
	if !ok {
		return bad("the text does not end with a newline")
	}
	lines := strings.Split(s, "\n")
	if len(lines) < 3 {
		return bad("fewer than three lines")
	}
	for _, l := range lines {
		if l == "" {
			return bad("an empty line")
		}
	}
	var c Checkpoint
	c.Origin = lines[0]
	size, ok := parseDecimal(lines[1], ^uint64(0))
	if !ok {
		return bad("the tree size is not a decimal number without leading zeros")
	}
	c.Size = size
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != HashSize || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return bad("the root hash is not a base64 SHA-256 hash")
	}
	copy(c.Root[:], root)
	if len(lines) > 3 {
		c.Extensions = lines[3:]
	}
	return c, nil
}

// ValidKeyName reports whether name can name a note key (and so be a
// checkpoint origin here): not empty, UTF-8, no spaces, no '+'.
func ValidKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// noteAlgEd25519 is the signature type of Ed25519 in signed notes.
const noteAlgEd25519 = 0x01

// noteSigner signs notes through a crypto.Signer holding an Ed25519 key,
// so that the key may live in a custodian or an HSM.
type noteSigner struct {
	name string
	hash uint32
	s    crypto.Signer
}

// NewNoteSigner returns a note signer named name (the checkpoint origin)
// that signs with s, whose public key must be Ed25519.
func NewNoteSigner(name string, s crypto.Signer) (note.Signer, error) {
	if !ValidKeyName(name) {
		return nil, fmt.Errorf("audit: %q cannot name a note key (it must be non-empty, without spaces or '+')", name)
	}
	pub, ok := s.Public().(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit: the checkpoint key must be Ed25519, not %T", s.Public())
	}
	return &noteSigner{name: name, hash: noteKeyHash(name, pub), s: s}, nil
}

func (n *noteSigner) Name() string    { return n.name }
func (n *noteSigner) KeyHash() uint32 { return n.hash }
func (n *noteSigner) Sign(msg []byte) ([]byte, error) {
	// Ed25519 signs the message itself: no pre-hash (crypto.Hash(0)).
	return n.s.Sign(rand.Reader, msg, crypto.Hash(0))
}

// noteKeyHash is the key ID of a signed-note Ed25519 key:
// SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key), first four bytes.
func noteKeyHash(name string, pub ed25519.PublicKey) uint32 {
	d := sha256.New()
	d.Write([]byte(name))
	d.Write([]byte{'\n', noteAlgEd25519})
	d.Write(pub)
	return binary.BigEndian.Uint32(d.Sum(nil))
}

// VerifierKey returns the verifier key string of a note key,
// name+hex key ID+base64(0x01 ‖ public key), as clients take it.
func VerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	if !ValidKeyName(name) {
		return "", fmt.Errorf("audit: %q cannot name a note key", name)
	}
	return note.NewEd25519VerifierKey(name, pub)
}

// NewVerifier reads a verifier key string. Only Ed25519 keys are accepted.
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("audit: %q is not a signed-note verifier key (name+keyid+base64): %w", vkey, err)
	}
	return v, nil
}

// SignCheckpoint signs c with s, whose name must be c's origin, and
// returns the note.
func SignCheckpoint(c Checkpoint, s note.Signer) ([]byte, error) {
	if s.Name() != c.Origin {
		return nil, fmt.Errorf("audit: a checkpoint of %q cannot be signed by key %q", c.Origin, s.Name())
	}
	msg, err := note.Sign(&note.Note{Text: string(c.Text())}, s)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	return msg, nil
}

// ErrCheckpointSignature reports a checkpoint that does not carry a valid
// signature by the expected key.
var ErrCheckpointSignature = errors.New("audit: the checkpoint is not signed by the log's key")

// OpenCheckpoint verifies a signed checkpoint note with v and returns the
// checkpoint. Its origin must be v's name; signatures by other keys (such
// as witnesses) are ignored.
func OpenCheckpoint(msg []byte, v note.Verifier) (Checkpoint, error) {
	if len(msg) > MaxCheckpointSize {
		return Checkpoint{}, fmt.Errorf("%w: larger than %d bytes", ErrBadCheckpoint, MaxCheckpointSize)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return Checkpoint{}, fmt.Errorf("%w %s", ErrCheckpointSignature, v.Name())
		}
		var invalid *note.InvalidSignatureError
		if errors.As(err, &invalid) {
			return Checkpoint{}, fmt.Errorf("%w %s: the signature is invalid", ErrCheckpointSignature, v.Name())
		}
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("%w: its origin is %q, not the key's name %q", ErrBadCheckpoint, c.Origin, v.Name())
	}
	return c, nil
}
