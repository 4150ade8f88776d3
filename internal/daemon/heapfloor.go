package daemon

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// DefaultHeapFloor is the heap size below which the daemons do not start
// a garbage collection.
const DefaultHeapFloor = 32 << 20

// KeepHeapFloor raises the garbage collector's percentage (GOGC) while the
// live heap is small, so that a collection starts only once the heap
// reaches about floor bytes, and sets it back to 100 once the live heap is
// half of floor or more: a daemon whose live heap is a few megabytes (a
// metadata server) otherwise collects every few hundred requests, which
// profiles show as several percent of its CPU. The heap's goal stays
// about max(floor, 2 × live). It checks every second until ctx is done.
// It does nothing when GOGC is set in the environment (getenv): the
// operator's choice stands.
func KeepHeapFloor(ctx context.Context, floor uint64, getenv func(string) string) {
	if getenv("GOGC") != "" || floor == 0 {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := 100
	set := func() {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		want := gcPercentFor(sample[0].Value.Uint64(), floor)
		// Small moves are not worth a call (it stops the world briefly).
		if want*10 < current*9 || want*10 > current*11 {
			debug.SetGCPercent(want)
			current = want
		}
	}
	set()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				set()
			}
		}
	}()
}

// minLive is the smallest live heap gcPercentFor reckons with: Go's own
// minimum heap goal is 4 MiB, and before the first collection the live
// heap reads as zero.
const minLive = 4 << 20

// gcPercentFor is the percentage whose heap goal for a live heap of live
// bytes is floor (live + live × p/100 = floor), and never less than 100,
// Go's default.
func gcPercentFor(live, floor uint64) int {
	live = max(live, minLive)
	if floor <= 2*live {
		return 100
	}
	return int((floor - live) * 100 / live)
}
