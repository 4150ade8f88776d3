package daemon

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// DefaultHeapFloor is the heap size below which the daemons do not let
// the garbage collector run more often than the default would on a heap
// of that size.
const DefaultHeapFloor = 64 << 20

// KeepHeapFloor raises the garbage collector's percentage (GOGC) while the
// live heap is small, so that a collection starts only once the heap has
// grown by at least floor bytes, and sets it back to 100 as the live heap
// grows past floor: a daemon whose live heap is a few megabytes (a
// metadata server) otherwise collects every few hundred requests, which
// profiles show as several percent of its CPU. Memory stays bounded by
// max(2 × live, live + floor). It checks every second until ctx is done.
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

// maxGCPercent bounds the percentage KeepHeapFloor sets, for a live heap
// of almost nothing at start.
const maxGCPercent = 10000

// gcPercentFor is the percentage that lets a live heap of live bytes grow
// by floor bytes (at least 100, Go's default, at most maxGCPercent).
func gcPercentFor(live, floor uint64) int {
	if live == 0 || floor/live >= maxGCPercent/100 {
		return maxGCPercent
	}
	p := floor * 100 / live
	if p < 100 {
		return 100
	}
	return int(p)
}
