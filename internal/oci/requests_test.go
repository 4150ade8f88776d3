package oci

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/signet-trust/signet/internal/registry"
)

// countingTransport records the requests sent through it, as "METHOD kind"
// (kind: the last of blobs/uploads, blobs, manifests, referrers the path
// holds).
type countingTransport struct {
	mu   sync.Mutex
	reqs []string
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	kind := "other"
	for _, k := range []string{"/blobs/uploads/", "/blobs/", "/manifests/", "/referrers/"} {
		if strings.Contains(req.URL.Path, k) {
			kind = strings.Trim(k, "/")
			break
		}
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, req.Method+" "+kind)
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// take returns the requests so far and starts again.
func (c *countingTransport) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reqs
	c.reqs = nil
	return r
}

func writes(reqs []string) int {
	n := 0
	for _, r := range reqs {
		if !strings.HasPrefix(r, "GET ") && !strings.HasPrefix(r, "HEAD ") {
			n++
		}
	}
	return n
}

// TestSignRequests: signing a digest in both forms takes only the requests
// it needs once the Repository has signed one digest (the shared empty
// config is not looked for again, a new blob is uploaded without asking
// whether it is there, the referrers tag and the legacy tag are read once
// each and not again before they are written, a registry without the
// Referrers API is not asked for it again, and where the registry takes a
// blob in one POST it gets one); signing again reads and writes nothing
// new; what was written verifies in both forms.
func TestSignRequests(t *testing.T) {
	ctx := context.Background()
	key := newKey(t, "ecdsa-p256")
	for name, c := range map[string]struct {
		host string
		want []string // the requests of the second digest signed
	}{
		// distribution 2.8: no Referrers API, no single-request upload.
		"docker-registry": {dockerRegistry(t), []string{
			"GET manifests", "POST blobs/uploads", "PUT blobs/uploads", "PUT manifests", "PUT manifests",
			"GET manifests", "POST blobs/uploads", "PUT blobs/uploads", "POST blobs/uploads", "PUT blobs/uploads", "PUT manifests"}},
		"ggcr-no-referrers-api": {ggcrRegistry(t, false), []string{
			"GET manifests", "POST blobs/uploads", "PUT manifests", "PUT manifests",
			"GET manifests", "POST blobs/uploads", "POST blobs/uploads", "PUT manifests"}},
		"ggcr-referrers-api": {ggcrRegistry(t, true), []string{
			"GET referrers", "POST blobs/uploads", "PUT manifests",
			"GET manifests", "POST blobs/uploads", "POST blobs/uploads", "PUT manifests"}},
	} {
		t.Run(name, func(t *testing.T) {
			ct := &countingTransport{}
			repo := (&registry.Client{Transport: ct}).Repository(registry.Reference{Registry: c.host, Repository: "count/app"}, "push,pull")
			var targets []Target
			for i := range 2 {
				pushed := pushImage(t, c.host, "count/app", fmt.Sprintf("v%d", i))
				tg, err := Resolve(ctx, repo, pushed.Digest())
				if err != nil {
					t.Fatal(err)
				}
				targets = append(targets, tg)
			}
			ct.take()
			for i, tg := range targets {
				ws, err := Sign(ctx, tg, key, Options{Now: testNow})
				if err != nil {
					t.Fatal(err)
				}
				if len(ws) != 2 || ws[0].Existing || ws[1].Existing {
					t.Fatalf("digest %d: wrote %+v, want both forms new", i, ws)
				}
				reqs := ct.take()
				if i == 1 && strings.Join(reqs, ", ") != strings.Join(c.want, ", ") {
					t.Errorf("signing a second digest sent\n  %s\nwant\n  %s", strings.Join(reqs, ", "), strings.Join(c.want, ", "))
				}
			}
			for i, tg := range targets {
				ws, err := Sign(ctx, tg, key, Options{Now: testNow})
				if err != nil {
					t.Fatal(err)
				}
				if len(ws) != 2 || !ws[0].Existing || !ws[1].Existing {
					t.Fatalf("digest %d signed again: %+v, want both forms existing", i, ws)
				}
				if reqs := ct.take(); writes(reqs) != 0 {
					t.Errorf("signing digest %d again wrote: %v", i, reqs)
				}
				// A fresh Repository (as another run has) sees both forms.
				fresh, err := Resolve(ctx, testClient().Repository(registry.Reference{Registry: c.host, Repository: "count/app"}, "pull"), tg.Digest())
				if err != nil {
					t.Fatal(err)
				}
				rep, err := Verify(ctx, fresh, key.Public(), Options{Now: testNow})
				if err != nil {
					t.Fatal(err)
				}
				var forms Form
				for _, s := range rep.Verified {
					forms |= s.Form
				}
				if len(rep.Verified) != 2 || forms != FormBoth {
					t.Fatalf("digest %d: verified %+v, rejected %+v; want one signature in each form", i, rep.Verified, rep.Rejected)
				}
			}
		})
	}
}
