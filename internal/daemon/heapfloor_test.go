package daemon

import (
	"context"
	"runtime/debug"
	"testing"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{0, 64 * mib, 1500}, // before the first collection: Go's 4 MiB minimum
		{1, 64 * mib, 1500},
		{4 * mib, 64 * mib, 1500},
		{16 * mib, 64 * mib, 300},
		{32 * mib, 64 * mib, 100},
		{64 * mib, 64 * mib, 100},
		{512 * mib, 64 * mib, 100},
		{20 * mib, 64 * mib, 220},
	} {
		if got := gcPercentFor(c.live, c.floor); got != c.want {
			t.Errorf("gcPercentFor(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
	}
}

// TestKeepHeapFloorLeavesGOGC: with GOGC in the environment, the
// operator's setting is not touched.
func TestKeepHeapFloorLeavesGOGC(t *testing.T) {
	old := debug.SetGCPercent(123)
	defer debug.SetGCPercent(old)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	KeepHeapFloor(ctx, DefaultHeapFloor, func(k string) string {
		if k == "GOGC" {
			return "123"
		}
		return ""
	})
	if got := debug.SetGCPercent(123); got != 123 {
		t.Fatalf("GOGC is %d after KeepHeapFloor with GOGC=123 set, want it left alone", got)
	}
	cancel()
}

// TestKeepHeapFloorRaisesGOGC: on this test's small heap the percentage is
// raised above the default at once.
func TestKeepHeapFloorRaisesGOGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	KeepHeapFloor(ctx, DefaultHeapFloor, func(string) string { return "" })
	cancel()
	if got := debug.SetGCPercent(100); got <= 100 {
		t.Fatalf("GOGC is %d on a small heap with a %d-byte floor, want more than 100", got, DefaultHeapFloor)
	}
}
