// Package workload names the GET workloads of the benchmark and resolves each
// to the URL path a Notary client requests (§2.1 routes 3 and 5).
package workload

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The GET workloads.
const (
	Timestamp = "timestamp" // current timestamp.json: what every client fetches first
	Snapshot  = "snapshot"  // current snapshot.json
	Targets   = "targets"   // current targets.json (K tags)
	Checksum  = "checksum"  // targets.<sha256>.json, as `notary list` and docker fetch it
)

// Names lists every workload in report order.
var Names = []string{Timestamp, Snapshot, Targets, Checksum}

// MetaPath is the path of a role file of gun; name is "timestamp",
// "targets.<hex>" and so on.
func MetaPath(gun, name string) string {
	return "/v2/" + gun + "/_trust/tuf/" + name + ".json"
}

// Resolve returns the path of workload w for gun on the server at base, and
// the body it answers with now.
func Resolve(ctx context.Context, c *http.Client, base, gun, w string) (string, []byte, error) {
	switch w {
	case Timestamp, Snapshot, Targets:
		p := MetaPath(gun, w)
		b, err := Get(ctx, c, base+p)
		return p, b, err
	case Checksum:
		snap, err := Get(ctx, c, base+MetaPath(gun, Snapshot))
		if err != nil {
			return "", nil, err
		}
		var s struct {
			Signed struct {
				Meta map[string]struct {
					Hashes map[string]string `json:"hashes"`
				} `json:"meta"`
			} `json:"signed"`
		}
		if err := json.Unmarshal(snap, &s); err != nil {
			return "", nil, fmt.Errorf("workload: snapshot of %s: %w", gun, err)
		}
		sum, err := base64.StdEncoding.DecodeString(s.Signed.Meta["targets"].Hashes["sha256"])
		if err != nil || len(sum) != sha256.Size {
			return "", nil, fmt.Errorf("workload: snapshot of %s has no sha256 for targets", gun)
		}
		p := MetaPath(gun, "targets."+hex.EncodeToString(sum))
		b, err := Get(ctx, c, base+p)
		if err != nil {
			return "", nil, err
		}
		if got := sha256.Sum256(b); string(got[:]) != string(sum) {
			return "", nil, fmt.Errorf("workload: %s: body does not match its checksum", p)
		}
		return p, b, nil
	}
	return "", nil, fmt.Errorf("workload: unknown workload %q (want one of %s)", w, strings.Join(Names, ", "))
}

// Get fetches url and returns the body of a 200 response.
func Get(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 100<<20))
	if err != nil {
		return nil, fmt.Errorf("workload: GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("workload: GET %s: %s: %.200s", url, resp.Status, b)
	}
	return b, nil
}
