package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

func inspectCases() map[string][]trustRepoJSON {
	tag := func(i int) trustTagJSON {
		return trustTagJSON{SignedTag: fmt.Sprintf("v%d", i), Digest: fmt.Sprintf("%064x", i), Signers: []string{"alice", "bob"}}
	}
	many := trustRepoJSON{Name: "registry.example.com/many"}
	for i := range 50 {
		many.SignedTags = append(many.SignedTags, tag(i))
	}
	many.Signers = []trustSignerJSON{{Name: "alice", Keys: []trustKeyJSON{{ID: "aa"}, {ID: "bb"}}}, {Name: "bob", Keys: []trustKeyJSON{}}}
	many.AdministrativeKeys = []trustSignerJSON{{Name: "Root", Keys: []trustKeyJSON{{ID: "cc"}}}, {Name: "Repository", Keys: nil}}
	return map[string][]trustRepoJSON{
		"nil":   nil,
		"empty": {},
		"bare":  {{Name: "example.com/bare"}},
		"empty lists": {{Name: "example.com/e", SignedTags: []trustTagJSON{}, Signers: []trustSignerJSON{},
			AdministrativeKeys: []trustSignerJSON{}}},
		"tag without signers": {{Name: "x", SignedTags: []trustTagJSON{{SignedTag: "t", Digest: "d"}, {SignedTag: "u", Signers: []string{}}}}},
		"escapes":             {{Name: "a<b>&\"c\\d\n\t\x00é\u2028\xff", SignedTags: []trustTagJSON{{SignedTag: "<script>", Digest: "\x7f", Signers: []string{"é", ""}}}}},
		"many":                {many, many},
	}
}

// TestInspectJSONMatchesMarshalIndent: the hand-written JSON of
// `signet trust inspect` is what json.MarshalIndent gives, byte for byte.
func TestInspectJSONMatchesMarshalIndent(t *testing.T) {
	for name, repos := range inspectCases() {
		want, err := json.MarshalIndent(repos, "", "    ")
		if err != nil {
			t.Fatal(err)
		}
		if got := appendInspectJSON(nil, repos); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
	}
}

func FuzzInspectJSON(f *testing.F) {
	f.Add("example.com/r", "v1", "sha", "alice", "kid", 1, 1)
	f.Add("a<b>&\"", "\x00\xff", "\u2028", "", "é", 0, 2)
	f.Fuzz(func(t *testing.T, name, tag, digest, signer, keyID string, tags, keys int) {
		repo := trustRepoJSON{Name: name}
		for i := range tags % 4 {
			repo.SignedTags = append(repo.SignedTags, trustTagJSON{SignedTag: tag, Digest: digest, Signers: []string{signer}[:i%2]})
		}
		if keys%3 != 0 {
			s := trustSignerJSON{Name: signer}
			for range keys % 3 {
				s.Keys = append(s.Keys, trustKeyJSON{ID: keyID})
			}
			repo.Signers = []trustSignerJSON{s}
			repo.AdministrativeKeys = []trustSignerJSON{s, {Name: keyID}}
		}
		repos := []trustRepoJSON{repo}
		want, err := json.MarshalIndent(repos, "", "    ")
		if err != nil {
			t.Fatal(err)
		}
		if got := appendInspectJSON(nil, repos); !bytes.Equal(got, want) {
			t.Fatalf("got %q\nwant %q", got, want)
		}
	})
}
