package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/tuf"
)

// TestRealBytesReservedVerbatim stores the files that the reference server
// held after the real notary 0.7 client and docker trust wrote them, and
// checks that every route serves them back byte for byte.
func TestRealBytesReservedVerbatim(t *testing.T) {
	dirs, _ := filepath.Glob("../tuf/testdata/*/*/fixture.json")
	if len(dirs) == 0 {
		t.Fatal("no fixtures")
	}
	e := newEnv(t)
	for _, fx := range dirs {
		dir := filepath.Dir(fx)
		var meta struct {
			GUN   string   `json:"gun"`
			Files []string `json:"files"`
		}
		b, _ := os.ReadFile(fx)
		if err := json.Unmarshal(b, &meta); err != nil {
			t.Fatal(err)
		}
		for _, name := range meta.Files {
			if !strings.HasSuffix(name, ".json") || strings.Contains(name, "private") {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			role := strings.TrimSuffix(name, ".json")
			if i := strings.IndexByte(role, '.'); i >= 0 {
				continue // N.root.json: stored with root.json's history below
			}
			c, err := tuf.Peek(data)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			f := store.File{GUN: meta.GUN, Role: role, Version: c.Version, Data: data, SHA256: fmt.Sprintf("%x", sum), Expires: c.Expires}
			if err := e.store.UpdateMany(context.Background(), meta.GUN, []store.File{f}); err != nil {
				t.Fatalf("%s %s: %v", meta.GUN, role, err)
			}
			base := "/v2/" + meta.GUN + "/_trust/tuf/"
			for _, path := range []string{
				base + role + ".json",
				fmt.Sprintf("%s%d.%s.json", base, c.Version, role),
				fmt.Sprintf("%s%s.%x.json", base, role, sum),
			} {
				got := e.get(path)
				if got.status != 200 || !bytes.Equal(got.body, data) {
					t.Errorf("%s: status %d, bytes identical: %v", path, got.status, bytes.Equal(got.body, data))
				}
			}
		}
	}
}
