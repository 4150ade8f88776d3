package admission

// Continuous validation: what was admitted is verified again on an
// interval, so that a signature revoked (or expired) after admission is
// noticed while the workload runs.

import (
	"context"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/audit"
)

// admitted is one verified image admitted in a namespace.
type admitted struct {
	ns       string
	img      image // as admitted (its tag, if any, is kept for the query)
	digest   string
	first    time.Time
	last     time.Time
	failing  string // why it no longer verifies ("" while it does)
	reported bool
}

// ledger remembers admitted images, bounded (least recently admitted go
// first).
type ledger struct {
	mu      sync.Mutex
	entries *lru[*admitted]
}

// remember records the verified images of an admitted request.
func (wh *Webhook) remember(ns string, rs []*result) {
	now := wh.now()
	wh.ledger.mu.Lock()
	defer wh.ledger.mu.Unlock()
	for _, r := range rs {
		if !r.verified() || r.digest == "" {
			continue
		}
		key := ns + "|" + r.img.repo() + ":" + r.img.ref.Tag + "@" + r.digest
		if a, ok := wh.ledger.entries.get(key); ok {
			a.last = now
			continue
		}
		wh.ledger.entries.put(key, &admitted{ns: ns, img: r.img, digest: r.digest, first: now, last: now})
	}
}

// Revalidate verifies every remembered admission again under the current
// policy and returns how many no longer verify. Each newly failing image
// is logged and recorded in the audit log (admission.unverified); the
// gauge signet_admission_unverified_running is set to the count. An image
// whose trust data cannot be had keeps its previous state.
func (wh *Webhook) Revalidate(ctx context.Context) int {
	wh.ledger.mu.Lock()
	var all []*admitted
	for el := wh.ledger.entries.ll.Front(); el != nil; el = el.Next() {
		all = append(all, el.Value.(*lruItem[*admitted]).val)
	}
	wh.ledger.mu.Unlock()

	failing := 0
	for _, a := range all {
		if ctx.Err() != nil {
			break
		}
		np := wh.policy.namespaceFor(a.ns)
		var rule *rulePolicy
		if np != nil {
			rule = np.ruleFor(a.img.repo())
		}
		if rule == nil {
			continue // the policy no longer covers it
		}
		img := a.img
		img.ref.Digest = a.digest
		ictx, cancel := context.WithTimeout(ctx, wh.policy.cfg.Timeout.D())
		r := wh.verifier.verify(ictx, rule, img)
		cancel()
		wh.ledger.mu.Lock()
		switch {
		case r.err == nil:
			if a.failing != "" {
				wh.log.InfoContext(ctx, "revalidation: verifies again", "namespace", a.ns, "image", a.img.written, "digest", a.digest)
			}
			a.failing, a.reported = "", false
		case r.unreachable:
			wh.log.WarnContext(ctx, "revalidation: cannot verify now", "namespace", a.ns, "image", a.img.written, "digest", a.digest, "err", r.err)
		default:
			a.failing = r.reason()
		}
		report := a.failing != "" && !a.reported
		if report {
			a.reported = true
		}
		if a.failing != "" {
			failing++
		}
		wh.ledger.mu.Unlock()
		if report {
			wh.log.WarnContext(ctx, "revalidation: an admitted image no longer verifies",
				"namespace", a.ns, "image", a.img.written, "digest", a.digest, "admitted", a.first, "reason", a.failing)
			wh.audit.record(ctx, audit.Event{
				Type:    audit.AdmissionUnverified,
				Actor:   audit.Actor{Kind: audit.ActorSystem, Name: "signet-admission"},
				Subject: audit.Subject{Namespace: a.ns, Image: a.img.pinned(a.digest), GUN: a.img.repo(), Digest: a.digest, Tag: a.img.ref.Tag},
				Images:  []string{a.img.written},
				Reason:  a.failing,
			})
		}
	}
	wh.metrics.unverified.Set(float64(failing))
	return failing
}

// revalidateLoop runs Revalidate every interval until ctx ends.
func (wh *Webhook) revalidateLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n := wh.Revalidate(ctx)
			wh.log.DebugContext(ctx, "revalidation done", "unverified", n)
		}
	}
}
