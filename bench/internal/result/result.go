// Package result is the one JSON-lines record every load tool prints, and the
// statistics used to fill it. A record describes one bounded measurement
// window of one workload against one target server.
package result

import (
	"encoding/json"
	"io"
	"math"
	"slices"
	"time"
)

// Kinds of record.
const (
	KindGet     = "get"
	KindConnect = "connect" // GETs each on a new TLS connection (notaryload get -keepalive=false)
	KindPublish = "publish"
	KindClient  = "client" // one timed run of a client command (bench/cmd/clientbench)
	KindSign    = "sign"   // signatures through signet-signer's API (bench/cmd/signload)
)

// Record is one measurement. Latencies are in milliseconds.
type Record struct {
	Kind      string  `json:"kind"`
	Target    string  `json:"target"`
	Workload  string  `json:"workload"`
	Rep       int     `json:"rep"`
	Conns     int     `json:"conns"`
	DurationS float64 `json:"duration_s"`
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	PerSecond float64 `json:"per_second"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`

	// GET only: size of one response body and the path requested.
	BodyBytes int64  `json:"body_bytes,omitempty"`
	Path      string `json:"path,omitempty"`

	// Publish only: repositories initialised, and the durability check of
	// acknowledged publishes (every acknowledged tag listed back, or missing).
	Repos    int    `json:"repos,omitempty"`
	Verified int64  `json:"verified,omitempty"`
	Missing  int64  `json:"missing,omitempty"`
	FirstErr string `json:"first_error,omitempty"`
	// ServerCPUMs is the CPU time (user + system, from /proc/<pid>/stat)
	// the server's processes spent while the publishes (or connect GETs)
	// ran, when their process IDs were given; CPU per publish (or per
	// connection) is ServerCPUMs / Requests.
	ServerCPUMs float64 `json:"server_cpu_ms,omitempty"`

	// Client only: wall time of one command, its CPU time (user + system)
	// and peak resident memory, and the tags it printed.
	WallMs   float64 `json:"wall_ms,omitempty"`
	CPUMs    float64 `json:"cpu_ms,omitempty"`
	MaxRSSKB int64   `json:"max_rss_kb,omitempty"`
	Tags     int     `json:"tags,omitempty"`

	Completed bool `json:"completed"`
}

// Write prints r as one JSON line.
func (r Record) Write(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Percentile returns the p-th percentile (0 < p ≤ 100, nearest rank) of
// sorted, in milliseconds; 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return float64(sorted[rank-1]) / float64(time.Millisecond)
}

// Latencies sorts lat in place and returns its p50 and p99 in milliseconds.
func Latencies(lat []time.Duration) (p50, p99 float64) {
	slices.Sort(lat)
	return Percentile(lat, 50), Percentile(lat, 99)
}
