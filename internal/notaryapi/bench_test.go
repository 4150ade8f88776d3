package notaryapi

import "testing"

// BenchmarkParsePath is the router's work on the GET hot path: a current
// metadata path of a typical GUN.
func BenchmarkParsePath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if p := ParsePath("/v2/docker.io/library/alpine/_trust/tuf/timestamp.json"); p.Kind != PathMetaCurrent {
			b.Fatal(p.Kind)
		}
	}
}
