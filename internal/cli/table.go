package cli

import (
	"bufio"
	"io"
	"strings"
	"unicode/utf8"
)

// Column layout of every table (table's tabwriter settings).
const (
	tableMinWidth = 4
	tablePadding  = 4
)

// writeTable writes what table(w, columns...) writes for rows rows, byte
// for byte, without a tabwriter: cell appends the text of one cell to dst
// and is called twice a cell, once to measure the columns and once to
// write the row straight into one buffer. A tabwriter handles every cell
// and byte on its own, which for the 10,000 rows of a large repository's
// listing cost about as much as verifying it. Cells must be printable text
// (printable.Quote): no tab, newline, form feed, vertical tab or tabwriter
// escape.
func writeTable(w io.Writer, columns []string, rows int, cell func(dst []byte, row, col int) []byte) error {
	n := len(columns)
	widths := make([]int, n-1)
	for c := range widths {
		widths[c] = max(tableMinWidth, utf8.RuneCountInString(columns[c])+tablePadding)
	}
	var scratch []byte
	for r := range rows {
		for c := range widths {
			scratch = cell(scratch[:0], r, c)
			widths[c] = max(widths[c], utf8.RuneCount(scratch)+tablePadding)
		}
	}
	buf := bufio.NewWriterSize(w, 64<<10)
	line := func(cells func(c int) []byte) {
		for c := range n {
			text := cells(c)
			buf.Write(text)
			if c < n-1 {
				for pad := widths[c] - utf8.RuneCount(text); pad > 0; {
					k := min(pad, len(spaces))
					buf.WriteString(spaces[:k])
					pad -= k
				}
			}
		}
		buf.WriteByte('\n')
	}
	line(func(c int) []byte { return append(scratch[:0], columns[c]...) })
	line(func(c int) []byte { return append(scratch[:0], strings.Repeat("-", len(columns[c]))...) })
	for r := range rows {
		line(func(c int) []byte {
			scratch = cell(scratch[:0], r, c)
			return scratch
		})
	}
	return buf.Flush()
}

const spaces = "                                                                "
