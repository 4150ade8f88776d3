package audit

import (
	"bytes"
	"crypto/ed25519"
	"testing"
)

func FuzzParseTilePath(f *testing.F) {
	for _, s := range []string{"tile/0/000", "tile/1/x001/234.p/5", "tile/entries/x123/x456/789.p/255", "tile/63/000", "tile/0/x000/001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tile, err := ParseTilePath(s)
		if err != nil {
			return
		}
		if tile.Width < 1 || tile.Width > TileWidth || tile.Level < EntriesLevel || tile.Level > MaxLevel {
			t.Fatalf("ParseTilePath(%q) = %+v", s, tile)
		}
		if p := tile.Path(); p != s {
			t.Fatalf("ParseTilePath(%q).Path() = %q: not canonical", s, p)
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("example.com/log\n5\n" + EmptyRoot.String() + "\n"))
	f.Add([]byte("example.com/log\n0\n" + EmptyRoot.String() + "\next\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Text(), b) {
			t.Fatalf("ParseCheckpoint(%q).Text() = %q", b, c.Text())
		}
	})
}

func FuzzOpenCheckpoint(f *testing.F) {
	key := newKey(f)
	s, _ := NewNoteSigner("example.com/log", key)
	v, _ := NewVerifier(mustVKey(f, "example.com/log", key))
	msg, _ := SignCheckpoint(Checkpoint{Origin: "example.com/log", Size: 7, Root: EmptyRoot}, s)
	f.Add(msg)
	f.Add([]byte("example.com/log\n7\n\n— example.com/log AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := OpenCheckpoint(b, v)
		if err != nil {
			return
		}
		// Only our own signature opens: the text must be what we signed.
		if c.Size != 7 || c.Root != EmptyRoot {
			t.Fatalf("OpenCheckpoint accepted %+v", c)
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	f.Add([]byte{0, 1, 'a', 0, 0})
	f.Add([]byte{0, 5, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := ParseBundle(b)
		if err != nil {
			return
		}
		var again []byte
		for _, e := range entries {
			again, _ = AppendBundle(again, e)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("ParseBundle(%x) does not round-trip", b)
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	b, _ := publishEvent().Encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEvent(b)
		if err != nil {
			return
		}
		if out, err := e.Encode(); err == nil {
			if _, err := ParseEvent(out); err != nil {
				t.Fatalf("Encode produced unparsable bytes %q", out)
			}
		}
	})
}

func mustVKey(t testing.TB, name string, key ed25519.PrivateKey) string {
	t.Helper()
	vkey, err := VerifierKey(name, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}
