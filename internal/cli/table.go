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

// writeTable writes what table(w, columns...) writes for these rows (cells
// holds len(columns) cells a row, row after row), byte for byte, without a
// tabwriter: it measures the columns once and writes each row straight
// into one buffer. A tabwriter handles every cell and byte on its own,
// which for the 10,000 rows of a large repository's listing costs more
// than verifying it. Cells must be printable text (printable.Quote): no
// tab, newline, form feed, vertical tab or tabwriter escape.
func writeTable(w io.Writer, columns []string, cells []string) error {
	n := len(columns)
	widths := make([]int, n-1)
	for c := range widths {
		widths[c] = max(tableMinWidth, utf8.RuneCountInString(columns[c])+tablePadding)
	}
	for i, cell := range cells {
		if c := i % n; c < n-1 {
			widths[c] = max(widths[c], utf8.RuneCountInString(cell)+tablePadding)
		}
	}
	buf := bufio.NewWriterSize(w, 64<<10)
	row := func(cells []string) {
		for c, cell := range cells {
			buf.WriteString(cell)
			if c < n-1 {
				pad := widths[c] - utf8.RuneCountInString(cell)
				for pad > 0 {
					k := min(pad, len(spaces))
					buf.WriteString(spaces[:k])
					pad -= k
				}
			}
		}
		buf.WriteByte('\n')
	}
	row(columns)
	rule := make([]string, n)
	for c, col := range columns {
		rule[c] = strings.Repeat("-", len(col))
	}
	row(rule)
	for i := 0; i+n <= len(cells); i += n {
		row(cells[i : i+n])
	}
	return buf.Flush()
}

const spaces = "                                                                "
