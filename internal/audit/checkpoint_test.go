package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func TestCheckpointSignAndOpen(t *testing.T) {
	key := newKey(t)
	s, err := NewNoteSigner("log.example/audit", key)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := VerifierKey("log.example/audit", key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	c := Checkpoint{Origin: "log.example/audit", Size: 20852163, Root: LeafHash([]byte("x"))}
	msg, err := SignCheckpoint(c, s)
	if err != nil {
		t.Fatal(err)
	}
	// The note format: text, blank line, "— name base64(keyhash ‖ sig)".
	text, sigs, ok := strings.Cut(string(msg), "\n\n")
	if !ok || text+"\n" != string(c.Text()) || !strings.HasPrefix(sigs, "— log.example/audit ") {
		t.Fatalf("note:\n%s", msg)
	}
	// x/mod's own verifier (from the same key string) accepts it.
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil || n.Text != string(c.Text()) {
		t.Fatalf("note.Open: %v", err)
	}
	got, err := OpenCheckpoint(msg, v)
	if err != nil {
		t.Fatal(err)
	}
	if got.Origin != c.Origin || got.Size != c.Size || got.Root != c.Root {
		t.Fatalf("OpenCheckpoint = %+v, want %+v", got, c)
	}
	// Our key hash is the one x/mod computes.
	if s.KeyHash() != v.KeyHash() {
		t.Fatalf("key hash %08x, x/mod %08x", s.KeyHash(), v.KeyHash())
	}

	// Another key of the same name: refused.
	other, _ := NewNoteSigner("log.example/audit", newKey(t))
	forged, err := SignCheckpoint(c, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(forged, v); !errors.Is(err, ErrCheckpointSignature) {
		t.Fatalf("checkpoint by another key: %v", err)
	}
	// A changed body: refused.
	tampered := bytes.Replace(msg, []byte("20852163"), []byte("20852164"), 1)
	if _, err := OpenCheckpoint(tampered, v); !errors.Is(err, ErrCheckpointSignature) {
		t.Fatalf("tampered checkpoint: %v", err)
	}
	// A witness cosignature beside ours is ignored.
	witness, _ := NewNoteSigner("witness.example", newKey(t))
	both, err := note.Sign(&note.Note{Text: string(c.Text())}, s, witness)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(both, v); err != nil {
		t.Fatalf("checkpoint with a witness signature: %v", err)
	}
	// A key whose name is not the origin cannot sign it.
	if _, err := SignCheckpoint(c, witness); err == nil {
		t.Fatal("signed a checkpoint of another origin")
	}
}

func TestNoteSignerNeedsEd25519(t *testing.T) {
	if _, err := NewNoteSigner("bad name", newKey(t)); err == nil {
		t.Error("a name with a space was accepted")
	}
	if _, err := NewNoteSigner("a+b", newKey(t)); err == nil {
		t.Error("a name with + was accepted")
	}
	if _, err := NewVerifier("not a key"); err == nil {
		t.Error("NewVerifier accepted garbage")
	}
}

func TestParseCheckpoint(t *testing.T) {
	root := LeafHash(nil).String()
	good := "example.com/log\n0\n" + root + "\n"
	if c, err := ParseCheckpoint([]byte(good)); err != nil || c.Size != 0 || c.Origin != "example.com/log" {
		t.Fatalf("ParseCheckpoint(good) = %+v, %v", c, err)
	}
	ext := "example.com/log\n5\n" + root + "\next one\n"
	if c, err := ParseCheckpoint([]byte(ext)); err != nil || len(c.Extensions) != 1 || string(c.Text()) != ext {
		t.Fatalf("ParseCheckpoint(ext) = %+v, %v", c, err)
	}
	for _, bad := range []string{
		"", "example.com/log\n", "example.com/log\n5\n" + root, "example.com/log\n05\n" + root + "\n",
		"example.com/log\n-5\n" + root + "\n", "example.com/log\n5\nAAAA\n", "\n5\n" + root + "\n",
		"example.com/log\n5\n" + root + "\n\n", "example.com/log\n18446744073709551616\n" + root + "\n",
		"example.com/log\n5\n" + strings.TrimRight(root, "=") + "\n", "example.com/log\n\xff\n" + root + "\n",
	} {
		if c, err := ParseCheckpoint([]byte(bad)); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("ParseCheckpoint(%q) = %+v, %v", bad, c, err)
		}
	}
}

func TestBundle(t *testing.T) {
	var b []byte
	entries := [][]byte{{}, []byte("a"), bytes.Repeat([]byte{0}, MaxEntrySize)}
	for _, e := range entries {
		var err error
		if b, err = AppendBundle(b, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ParseBundle(b)
	if err != nil || len(got) != len(entries) {
		t.Fatalf("ParseBundle = %d entries, %v", len(got), err)
	}
	for i := range entries {
		if !bytes.Equal(got[i], entries[i]) {
			t.Fatalf("entry %d differs", i)
		}
	}
	if _, err := AppendBundle(nil, make([]byte, MaxEntrySize+1)); !errors.Is(err, ErrEntryTooLarge) {
		t.Fatalf("oversized entry: %v", err)
	}
	for _, bad := range [][]byte{{0}, {0, 2, 'a'}, {0xff, 0xff}} {
		if _, err := ParseBundle(bad); err == nil {
			t.Errorf("ParseBundle(%x) succeeded", bad)
		}
	}
	var full []byte
	for range TileWidth + 1 {
		full, _ = AppendBundle(full, []byte("x"))
	}
	if _, err := ParseBundle(full); err == nil {
		t.Error("a bundle of 257 entries was accepted")
	}
}
