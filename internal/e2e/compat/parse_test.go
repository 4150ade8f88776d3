package compat

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// table is a table printed by the notary CLI (list, status, delegation
// list, key list): a header line, a line of dashes, rows aligned by
// text/tabwriter, ended by a blank line or the end of output.
type table struct {
	header []string
	rows   [][]string
}

var dashLine = regexp.MustCompile(`^-+( +-+)*$`)

// parseTable finds the first table in out. Columns are cut at the offsets
// where the dash line's runs begin, so empty cells and cells with single
// spaces (`"" <all paths>`) survive.
func parseTable(out string) (table, error) {
	lines := strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n")
	for i := 0; i+1 < len(lines); i++ {
		dashes := strings.TrimRight(lines[i+1], " ")
		if strings.TrimSpace(lines[i]) == "" || !dashLine.MatchString(dashes) {
			continue
		}
		var starts []int
		for j := range len(dashes) {
			if dashes[j] == '-' && (j == 0 || dashes[j-1] == ' ') {
				starts = append(starts, j)
			}
		}
		cut := func(line string) []string {
			cells := make([]string, len(starts))
			for k, s := range starts {
				if s >= len(line) {
					continue
				}
				e := len(line)
				if k+1 < len(starts) && starts[k+1] < e {
					e = starts[k+1]
				}
				cells[k] = strings.TrimSpace(line[s:e])
			}
			return cells
		}
		tb := table{header: cut(lines[i])}
		for _, l := range lines[i+2:] {
			if strings.TrimSpace(l) == "" {
				break
			}
			tb.rows = append(tb.rows, cut(l))
		}
		return tb, nil
	}
	return table{}, fmt.Errorf("no table in output:\n%s", out)
}

// col returns the index of the column whose header is name.
func (tb table) col(t testing.TB, name string) int {
	t.Helper()
	for i, h := range tb.header {
		if h == name {
			return i
		}
	}
	t.Fatalf("table has no column %q (header %q)", name, tb.header)
	return -1
}

// project returns the rows reduced to the named columns, in order.
func (tb table) project(t testing.TB, names ...string) [][]string {
	t.Helper()
	idx := make([]int, len(names))
	for i, n := range names {
		idx[i] = tb.col(t, n)
	}
	out := make([][]string, 0, len(tb.rows))
	for _, r := range tb.rows {
		p := make([]string, len(idx))
		for i, j := range idx {
			p[i] = r[j]
		}
		out = append(out, p)
	}
	return out
}

// mustTable parses the command's stdout as a table and checks the header.
func mustTable(t testing.TB, r *cmdResult, header ...string) table {
	t.Helper()
	tb, err := parseTable(r.Stdout)
	if err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	if len(header) > 0 && !reflect.DeepEqual(tb.header, header) {
		t.Fatalf("table header = %q, want %q\n%s", tb.header, header, r)
	}
	return tb
}

// wantRows fails unless the projected rows equal want exactly (in order).
func wantRows(t testing.TB, r *cmdResult, tb table, cols []string, want [][]string) {
	t.Helper()
	got := tb.project(t, cols...)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("table columns %q:\n got  %q\n want %q\n%s", cols, got, want, r)
	}
}

// Column sets of the notary CLI tables (0.7.0).
var (
	listHeader       = []string{"NAME", "DIGEST", "SIZE (BYTES)", "ROLE"}
	statusHeader     = []string{"#", "ACTION", "SCOPE", "TYPE", "PATH"}
	delegationHeader = []string{"ROLE", "PATHS", "KEY IDS", "THRESHOLD"}
	keyListHeader    = []string{"ROLE", "GUN", "KEY ID", "LOCATION"}
)

// trustRepo is one element of `docker trust inspect` JSON output.
type trustRepo struct {
	Name       string
	SignedTags []struct {
		SignedTag string
		Digest    string
		Signers   []string
	}
	Signers            []trustSigner
	AdministrativeKeys []trustSigner
}

type trustSigner struct {
	Name string
	Keys []struct{ ID string }
}

func parseInspect(t testing.TB, r *cmdResult) []trustRepo {
	t.Helper()
	var repos []trustRepo
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&repos); err != nil {
		t.Fatalf("docker trust inspect output is not the expected JSON: %v\n%s", err, r)
	}
	return repos
}

// signedTags renders SignedTags as "tag digest signer,signer" lines.
func (tr trustRepo) signedTags() []string {
	var out []string
	for _, s := range tr.SignedTags {
		out = append(out, s.SignedTag+" "+s.Digest+" "+strings.Join(s.Signers, ","))
	}
	return out
}

// keys returns the key IDs of the named signer (or administrative role).
func keysOf(signers []trustSigner, name string) ([]string, bool) {
	for _, s := range signers {
		if s.Name == name {
			var ids []string
			for _, k := range s.Keys {
				ids = append(ids, k.ID)
			}
			return ids, true
		}
	}
	return nil, false
}

func TestParseTable(t *testing.T) {
	// Real outputs of the Debian notary 0.7.0 client.
	status := `Unpublished changes for example.com/play/app:

#    ACTION    SCOPE      TYPE       PATH
-    ------    -----      ----       ----
0    update    targets    witness    
1    create    targets    target     v2
`
	tb, err := parseTable(status)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"0", "update", "targets", "witness", ""}, {"1", "create", "targets", "target", "v2"}}
	if !reflect.DeepEqual(tb.header, statusHeader) || !reflect.DeepEqual(tb.rows, want) {
		t.Fatalf("status: got %q %q", tb.header, tb.rows)
	}

	deleg := `
ROLE                PATHS             KEY IDS                                                             THRESHOLD
----                -----             -------                                                             ---------
targets/releases    "" <all paths>    250854e5cf79f3c005154d7dbc54de19342349cf3076a301318c746ff9297cfc    1
targets/team        team/             c1c921029d298844e6a8d6da28aa991b7d21ab8bf1d0c544291b95441648e442    1

`
	tb, err = parseTable(deleg)
	if err != nil {
		t.Fatal(err)
	}
	want = [][]string{
		{"targets/releases", `"" <all paths>`, "250854e5cf79f3c005154d7dbc54de19342349cf3076a301318c746ff9297cfc", "1"},
		{"targets/team", "team/", "c1c921029d298844e6a8d6da28aa991b7d21ab8bf1d0c544291b95441648e442", "1"},
	}
	if !reflect.DeepEqual(tb.header, delegationHeader) || !reflect.DeepEqual(tb.rows, want) {
		t.Fatalf("delegation list: got %q %q", tb.header, tb.rows)
	}

	if _, err := parseTable("No targets present in this repository.\n"); err == nil {
		t.Fatal("parsed a table out of a sentence")
	}
}

func TestNormalize(t *testing.T) {
	n := normalizer{keep: map[string]bool{"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03": true}}
	n.replace("/tmp/x/trust", "<trust>")
	in := "v1 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 6\n" +
		"root ee2bc4875fafafcca0ec5d998e1d7b44d884151f7939899ec76e570d435b397b /tmp/x/trust/private\n"
	want := "v1 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 6\n" +
		"root <id> <trust>/private\n"
	if got := n.apply(in); got != want {
		t.Fatalf("normalize:\n got %q\nwant %q", got, want)
	}
}

func TestLineDiff(t *testing.T) {
	if d := lineDiff([]string{"a", "b"}, []string{"a", "b"}); d != "" {
		t.Fatalf("equal inputs gave a diff:\n%s", d)
	}
	got := lineDiff([]string{"a", "b", "c"}, []string{"a", "x", "c"})
	if want := "  a\n+ x\n- b\n  c\n"; got != want && got != "  a\n- b\n+ x\n  c\n" {
		t.Fatalf("lineDiff:\n%s", got)
	}
}
