package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxEntrySize is the largest entry an entry bundle can carry: its length
// prefix is a big-endian uint16.
const MaxEntrySize = 1<<16 - 1

// ErrEntryTooLarge reports an entry longer than MaxEntrySize.
var ErrEntryTooLarge = errors.New("audit: entry larger than 65535 bytes")

// AppendBundle appends entry to an entry bundle: its length as a
// big-endian uint16, then its bytes.
func AppendBundle(bundle, entry []byte) ([]byte, error) {
	if len(entry) > MaxEntrySize {
		return bundle, ErrEntryTooLarge
	}
	bundle = binary.BigEndian.AppendUint16(bundle, uint16(len(entry)))
	return append(bundle, entry...), nil
}

// ParseBundle splits an entry bundle into its entries (sub-slices of b).
// A bundle holds at most TileWidth entries and nothing after the last.
func ParseBundle(b []byte) ([][]byte, error) {
	var entries [][]byte
	for off := 0; off < len(b); {
		if len(entries) == TileWidth {
			return nil, fmt.Errorf("audit: entry bundle holds more than %d entries", TileWidth)
		}
		if len(b)-off < 2 {
			return nil, fmt.Errorf("audit: entry bundle truncated in the length of entry %d", len(entries))
		}
		n := int(binary.BigEndian.Uint16(b[off:]))
		off += 2
		if len(b)-off < n {
			return nil, fmt.Errorf("audit: entry bundle truncated in entry %d (%d of %d bytes)", len(entries), len(b)-off, n)
		}
		entries = append(entries, b[off:off+n:off+n])
		off += n
	}
	return entries, nil
}
