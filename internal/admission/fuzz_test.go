package admission

import (
	"strings"
	"testing"
)

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodPolicy))
	f.Add([]byte("namespaces:\n  - name: x\n    rules:\n      - images: \"**\"\n        cosign: {keys: [k]}\n"))
	f.Add([]byte("cache: {ttl: 1s, max_stale: 0s}\n"))
	f.Add([]byte("- [\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		// What parses has its defaults and checked values.
		if c.Timeout.D() <= 0 || c.Cache.TTL.D() <= 0 || c.Cache.MaxEntries <= 0 || (c.Default != NoMatchAdmit && c.Default != NoMatchDeny) {
			t.Fatalf("defaults not set: %+v", c)
		}
		for _, ns := range c.Spaces {
			if ns.Mode != ModeEnforce && ns.Mode != ModeWarn && ns.Mode != ModeAudit {
				t.Fatalf("mode %q accepted", ns.Mode)
			}
			for _, r := range ns.Rules {
				if _, err := compileGlob(r.Images); err != nil {
					t.Fatalf("glob %q accepted: %v", r.Images, err)
				}
			}
		}
	})
}

func FuzzDecodeReview(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"prod","object":{"spec":{"containers":[{"name":"a","image":"r.example/app:v1"}]}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"group":"batch","version":"v1","kind":"CronJob"},"operation":"CREATE","object":{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"initContainers":[{"image":"x"}]}}}}}}}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rev, err := DecodeReview(b)
		if err != nil {
			return
		}
		req := rev.Request
		if req == nil || req.UID == "" || req.Kind.Kind == "" {
			t.Fatalf("accepted without uid or kind: %s", b)
		}
		w, known, err := podSpecOf(req.Kind, req.Object.Raw)
		if !known || err != nil {
			return
		}
		for _, c := range w.containers() {
			if !strings.HasPrefix(c.path, w.base+"/") || !strings.HasSuffix(c.path, "/image") {
				t.Fatalf("container path %q outside %q", c.path, w.base)
			}
			if img, err := parseImage(c.image); err == nil && img.repo() == "" {
				t.Fatalf("image %q without repository", c.image)
			}
		}
	})
}
