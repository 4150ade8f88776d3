package cli

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestWriteTableAsTabwriter checks that writeTable writes exactly what
// table's tabwriter writes, for cells of many widths, multi-byte runes and
// empty cells among them.
func TestWriteTableAsTabwriter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"", "a", "v1.0.0", "ünïcödé", "日本語のタグ", "🙂", strings.Repeat("x", 70), "targets/releases", "97654d5cb25f6f4fb4d7e39027452f6401ddfe5eb2fb4212924ab14891757f52"}
	for _, columns := range [][]string{{"NAME", "DIGEST", "SIZE (BYTES)", "ROLE"}, {"A", "B"}, {"ROLE", "PATHS", "KEY IDS", "THRESHOLD", "X"}} {
		for rows := range 40 {
			var cells []string
			for range rows * len(columns) {
				cells = append(cells, words[rng.IntN(len(words))])
			}
			var want, got bytes.Buffer
			tw := table(&want, columns...)
			for i := 0; i < len(cells); i += len(columns) {
				fmt.Fprintln(tw, strings.Join(cells[i:i+len(columns)], "\t"))
			}
			if err := tw.Flush(); err != nil {
				t.Fatal(err)
			}
			n := len(columns)
			err := writeTable(&got, columns, len(cells)/n, func(dst []byte, row, col int) []byte {
				return append(dst, cells[row*n+col]...)
			})
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Fatalf("%d rows of %q:\ngot\n%s\nwant\n%s", rows, columns, got.String(), want.String())
			}
		}
	}
}
