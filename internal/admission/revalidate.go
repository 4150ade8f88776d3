package admission

// Continuous validation: what was admitted is verified again on an
// interval, so that a signature revoked (or expired) after admission is
// noticed while the workload runs.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

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
// policy — and, with a pod lister, every image of the running pods — and
// returns how many do not verify. Each newly failing image is logged and
// recorded in the audit log (admission.unverified); the gauge
// signet_admission_unverified_running is set to the count. An image whose
// trust data cannot be had keeps its previous state.
func (wh *Webhook) Revalidate(ctx context.Context) int {
	failing := 0
	if wh.pods != nil {
		failing = wh.running(ctx)
	}
	wh.ledger.mu.Lock()
	var all []*admitted
	for el := wh.ledger.entries.ll.Front(); el != nil; el = el.Next() {
		all = append(all, el.Value.(*lruItem[*admitted]).val)
	}
	wh.ledger.mu.Unlock()

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
		// A running pod's image the lister already counted and reported
		// is not counted twice.
		dup := wh.pods != nil && wh.runningFailing.has(a.ns+"|"+a.img.written)
		report := a.failing != "" && !a.reported && !dup
		if report || dup {
			a.reported = a.failing != ""
		}
		if a.failing != "" && !dup {
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

// podLister lists the pods running in the cluster through the Kubernetes
// API, so that revalidation covers what runs and not only what this
// process admitted.
type podLister struct {
	url       string // https://host:port of the API server
	tokenFile string // re-read on every listing (projected tokens rotate)
	hc        *http.Client
}

// In-cluster defaults of the pod lister.
const (
	inClusterToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	inClusterCA    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
	maxPodPages    = 1000
	podPageSize    = 500
)

// newPodLister reaches the API server at apiURL with the token in
// tokenFile, trusting caFile; empty values are the in-cluster ones
// (KUBERNETES_SERVICE_HOST, the service account's token and CA).
func newPodLister(getenv func(string) string, apiURL, tokenFile, caFile string) (*podLister, error) {
	if apiURL == "" {
		host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return nil, errors.New("not running in a cluster (no KUBERNETES_SERVICE_HOST): give --kube-api")
		}
		apiURL = "https://" + net.JoinHostPort(host, port)
	}
	if tokenFile == "" {
		tokenFile = inClusterToken
	}
	if caFile == "" {
		caFile = inClusterCA
	}
	if _, err := readSecret(tokenFile); err != nil {
		return nil, fmt.Errorf("the Kubernetes API token: %w", err)
	}
	pool, err := certPool(caFile)
	if err != nil {
		return nil, fmt.Errorf("the Kubernetes API CA: %w", err)
	}
	return &podLister{url: strings.TrimSuffix(apiURL, "/"), tokenFile: tokenFile, hc: &http.Client{Transport: transport(pool), Timeout: 30 * time.Second, CheckRedirect: noRedirect}}, nil
}

// pods lists every pod, a page at a time.
func (l *podLister) pods(ctx context.Context) ([]corev1.Pod, error) {
	token, err := readSecret(l.tokenFile)
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	cont := ""
	for page := 0; page < maxPodPages; page++ {
		q := url.Values{"limit": {strconv.Itoa(podPageSize)}}
		if cont != "" {
			q.Set("continue", cont)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url+"/api/v1/pods?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/json")
		resp, err := l.hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("listing pods: %w", err)
		}
		var list corev1.PodList
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("listing pods: the API server answered HTTP %d", resp.StatusCode)
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&list)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("listing pods: %w", err)
		}
		out = append(out, list.Items...)
		if cont = list.Continue; cont == "" {
			return out, nil
		}
	}
	return nil, fmt.Errorf("listing pods: more than %d pages", maxPodPages)
}

// running verifies the images of the running pods under the current
// policy: those that verify are remembered (and revalidated with the
// rest), those that do not are reported once each and counted.
func (wh *Webhook) running(ctx context.Context) int {
	pods, err := wh.pods.pods(ctx)
	if err != nil {
		wh.log.WarnContext(ctx, "revalidation: cannot list the running pods", "err", err)
		return wh.runningFailing.count()
	}
	now := map[string]bool{}
	for _, p := range pods {
		np := wh.policy.namespaceFor(p.Namespace)
		if np == nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		w := &workload{meta: p.ObjectMeta, spec: &p.Spec, base: "/spec"}
		for _, c := range w.containers() {
			key := p.Namespace + "|" + c.image
			if now[key] {
				continue
			}
			ictx, cancel := context.WithTimeout(ctx, wh.policy.cfg.Timeout.D())
			r := wh.decideImage(ictx, np, c.image)
			cancel()
			switch {
			case r.rule == nil && r.err == nil:
			case r.err == nil:
				wh.remember(p.Namespace, []*result{r})
			case r.unreachable:
				if wh.runningFailing.has(key) {
					now[key] = true // keep the previous state
				}
			default:
				now[key] = true
				if wh.runningFailing.report(key) {
					wh.log.WarnContext(ctx, "revalidation: a running pod's image does not verify",
						"namespace", p.Namespace, "pod", p.Name, "image", c.image, "reason", r.reason())
					wh.audit.record(ctx, audit.Event{
						Type:    audit.AdmissionUnverified,
						Actor:   audit.Actor{Kind: audit.ActorSystem, Name: "signet-admission"},
						Subject: audit.Subject{Namespace: p.Namespace, Image: c.image},
						Images:  []string{c.image},
						Origin:  map[string]string{"kind": "Pod", "name": p.Name, "uid": string(p.UID)},
						Reason:  r.reason(),
					})
				}
			}
		}
	}
	return wh.runningFailing.keep(now)
}

// failingSet is the running images (namespace|image) that do not verify.
type failingSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (f *failingSet) has(k string) bool { f.mu.Lock(); defer f.mu.Unlock(); return f.m[k] }

// report adds k and reports whether it is new.
func (f *failingSet) report(k string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]bool{}
	}
	if f.m[k] {
		return false
	}
	f.m[k] = true
	return true
}

// keep drops what is not in now and returns the count.
func (f *failingSet) keep(now map[string]bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.m {
		if !now[k] {
			delete(f.m, k)
		}
	}
	return len(f.m)
}

func (f *failingSet) count() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.m) }
