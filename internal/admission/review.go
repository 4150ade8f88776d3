package admission

// Decisions on AdmissionRequests: find the pod spec in the object, decide
// every container image under the namespace's rules, apply the mode and
// break-glass, and — for /mutate — pin every verified tag to its digest.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-trust/signet/internal/audit"
)

// BreakGlassAnnotation admits an unverified workload, with its value as
// the reason, in namespaces whose policy allows it; every use is recorded
// in the audit log first.
const BreakGlassAnnotation = "signet.dev/break-glass"

// maxBreakGlassReason bounds the reason recorded.
const maxBreakGlassReason = 1024

// workload is the part of an object decisions read.
type workload struct {
	meta     metav1.ObjectMeta
	template *metav1.ObjectMeta // the pod template's, for workloads
	spec     *corev1.PodSpec
	base     string // JSON pointer of the pod spec in the object
}

// podSpecOf finds the pod spec of an object of a kind that has one. known
// is false for kinds without a pod spec.
func podSpecOf(kind metav1.GroupVersionKind, raw []byte) (w *workload, known bool, err error) {
	decode := func(v any) error {
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("the %s object does not decode: %v", kind.Kind, err)
		}
		return nil
	}
	tmpl := func(meta metav1.ObjectMeta, t *corev1.PodTemplateSpec, base string) *workload {
		if t == nil {
			return &workload{meta: meta, base: base}
		}
		return &workload{meta: meta, template: &t.ObjectMeta, spec: &t.Spec, base: base}
	}
	switch kind.Group + "/" + kind.Kind {
	case "/Pod":
		var o corev1.Pod
		if err := decode(&o); err != nil {
			return nil, true, err
		}
		return &workload{meta: o.ObjectMeta, spec: &o.Spec, base: "/spec"}, true, nil
	case "/ReplicationController":
		var o corev1.ReplicationController
		if err := decode(&o); err != nil {
			return nil, true, err
		}
		return tmpl(o.ObjectMeta, o.Spec.Template, "/spec/template/spec"), true, nil
	case "/PodTemplate":
		var o corev1.PodTemplate
		if err := decode(&o); err != nil {
			return nil, true, err
		}
		return tmpl(o.ObjectMeta, &o.Template, "/template/spec"), true, nil
	case "apps/Deployment":
		var o appsv1.Deployment
		if err := decode(&o); err != nil {
			return nil, true, err
		}
		return tmpl(o.ObjectMeta, &o.Spec.Template, "/spec/template/spec"), true, nil
	case "apps/StatefulSet":
		var o appsv1.StatefulSet
		if err := decode(&o); err != nil {
			return nil, true, err
		}
		return tmpl(o.ObjectMeta, &o.Spec.Template, "/spec/template/spec"), true, nil
	case "apps/DaemonSet":
		var o appsv1.DaemonSet
		if err := decode(&o); err != nil {
			return nil, true, err
		}
		return tmpl(o.ObjectMeta, &o.Spec.Template, "/spec/template/spec"), true, nil
	case "apps/ReplicaSet":
		var o appsv1.ReplicaSet
		if err := decode(&o); err != nil {
			return nil, true, err
		}
		return tmpl(o.ObjectMeta, &o.Spec.Template, "/spec/template/spec"), true, nil
	case "batch/Job":
		var o batchv1.Job
		if err := decode(&o); err != nil {
			return nil, true, err
		}
		return tmpl(o.ObjectMeta, &o.Spec.Template, "/spec/template/spec"), true, nil
	case "batch/CronJob":
		var o batchv1.CronJob
		if err := decode(&o); err != nil {
			return nil, true, err
		}
		return tmpl(o.ObjectMeta, &o.Spec.JobTemplate.Spec.Template, "/spec/jobTemplate/spec/template/spec"), true, nil
	}
	return nil, false, nil
}

// container is one image of a pod spec.
type container struct {
	where string // containers[0] "web"
	path  string // JSON pointer of its image
	image string
}

func (w *workload) containers() []container {
	if w.spec == nil {
		return nil
	}
	var out []container
	add := func(list, name, image string, i int) {
		out = append(out, container{
			where: fmt.Sprintf("%s[%d] %q", list, i, name),
			path:  w.base + "/" + list + "/" + strconv.Itoa(i) + "/image",
			image: image,
		})
	}
	for i, c := range w.spec.InitContainers {
		add("initContainers", c.Name, c.Image, i)
	}
	for i, c := range w.spec.Containers {
		add("containers", c.Name, c.Image, i)
	}
	for i, c := range w.spec.EphemeralContainers {
		add("ephemeralContainers", c.Name, c.Image, i)
	}
	return out
}

// breakGlass returns the break-glass reason on the object or its pod
// template ("" when none).
func (w *workload) breakGlass() string {
	for _, m := range []*metav1.ObjectMeta{&w.meta, w.template} {
		if m == nil {
			continue
		}
		if r := strings.TrimSpace(m.Annotations[BreakGlassAnnotation]); r != "" {
			if len(r) > maxBreakGlassReason {
				r = r[:maxBreakGlassReason]
			}
			return r
		}
	}
	return ""
}

// patchOp is one JSONPatch operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
}

// maxParallel bounds the images of one request verified at once.
const maxParallel = 8

// outcome is what a review decided, for metrics and the audit log.
type outcome string

const (
	outAllow      outcome = "allow" // every image verified (or no rule applies)
	outDeny       outcome = "deny"  // refused
	outWarn       outcome = "warn"  // admitted unverified in warn mode
	outAudit      outcome = "audit" // admitted unverified in audit mode
	outBreakGlass outcome = "break_glass"
	outSkip       outcome = "skip" // nothing to decide: operation, kind or namespace without policy
	outError      outcome = "error"
)

// review decides one request. mutate: the answer for /mutate, which
// admits and pins what verifies and leaves refusing to /validate.
func (wh *Webhook) review(ctx context.Context, req *admissionv1.AdmissionRequest, mutate bool) (*admissionv1.AdmissionResponse, outcome) {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return resp, outSkip
	}
	w, known, err := podSpecOf(req.Kind, req.Object.Raw)
	if !known {
		wh.log.DebugContext(ctx, "no pod spec in this kind: admitted", "kind", req.Kind.Group+"/"+req.Kind.Kind, "uid", req.UID)
		return resp, outSkip
	}
	if err != nil {
		return deny(resp, http.StatusBadRequest, "signet-admission: "+err.Error()), outError
	}
	ns := req.Namespace
	if ns == "" {
		ns = w.meta.Namespace
	}
	np := wh.policy.namespaceFor(ns)
	if np == nil {
		return resp, outSkip
	}

	// Decide each distinct image once, a few at a time.
	cs := w.containers()
	results := make([]*result, len(cs))
	byImage := map[string][]int{}
	for i, c := range cs {
		byImage[c.image] = append(byImage[c.image], i)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallel)
	for img, idx := range byImage {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := wh.decideImage(ctx, np, img)
			for _, i := range idx {
				results[i] = r
			}
		}()
	}
	wg.Wait()

	var failures, warnings []string
	var failed []*result
	seenWarn := map[string]bool{}
	var patch []patchOp
	for i, r := range results {
		for _, wmsg := range r.warnings {
			if !seenWarn[wmsg] {
				seenWarn[wmsg] = true
				warnings = append(warnings, wmsg)
			}
		}
		switch {
		case r.err != nil:
			failures = append(failures, fmt.Sprintf("image %s (%s): %s", cs[i].image, cs[i].where, r.reason()))
			failed = append(failed, r)
		case r.verified() && r.img.ref.Digest == "":
			patch = append(patch, patchOp{Op: "replace", Path: cs[i].path, Value: r.img.pinned(r.digest)})
		}
	}

	if mutate {
		if len(patch) > 0 {
			b, err := json.Marshal(patch)
			if err != nil {
				return deny(resp, http.StatusInternalServerError, "signet-admission: "+err.Error()), outError
			}
			pt := admissionv1.PatchTypeJSONPatch
			resp.Patch, resp.PatchType = b, &pt
		}
		resp.Warnings = limitWarnings(warnings)
		return resp, outAllow
	}

	info := requestInfo{req: req, ns: ns, w: w}
	if len(failures) == 0 {
		resp.Warnings = limitWarnings(warnings)
		wh.remember(ns, results)
		if imgs := verifiedImages(results); wh.policy.cfg.Audit.Verified && len(imgs) > 0 {
			wh.audit.record(ctx, info.event(audit.AdmissionAllow, imgs, "verified"))
		}
		return resp, outAllow
	}
	summary := strings.Join(failures, "; ")
	// Break-glass is an exception to enforcement: in warn and audit mode
	// the object is admitted (and recorded) anyway.
	if reason := w.breakGlass(); reason != "" && np.mode == ModeEnforce {
		return wh.breakGlass(ctx, resp, np, info, reason, summary, failed, results, warnings)
	}
	switch np.mode {
	case ModeWarn:
		resp.Warnings = limitWarnings(append([]string{"signet-admission (warn mode): " + summary}, warnings...))
		wh.audit.record(ctx, info.event(audit.AdmissionAllow, failedImages(failed), "admitted unverified (warn mode): "+summary))
		wh.remember(ns, results)
		return resp, outWarn
	case ModeAudit:
		resp.Warnings = limitWarnings(warnings)
		wh.audit.record(ctx, info.event(audit.AdmissionAllow, failedImages(failed), "admitted unverified (audit mode): "+summary))
		wh.remember(ns, results)
		return resp, outAudit
	}
	msg := "signet-admission: " + summary
	wh.audit.record(ctx, info.event(audit.AdmissionDeny, failedImages(failed), msg))
	resp = deny(resp, http.StatusForbidden, msg)
	resp.Warnings = limitWarnings(warnings)
	return resp, outDeny
}

// breakGlass answers an enforcing namespace's request that carries the
// break-glass annotation: refused where the namespace does not allow it;
// else admitted once the audit log holds the record, refused when it
// cannot be written.
func (wh *Webhook) breakGlass(ctx context.Context, resp *admissionv1.AdmissionResponse, np *nsPolicy, info requestInfo, reason, summary string,
	failed, results []*result, warnings []string) (*admissionv1.AdmissionResponse, outcome) {
	ns, user := info.ns, info.req.UserInfo.Username
	if !np.breakGlass {
		msg := fmt.Sprintf("signet-admission: break-glass is not allowed in namespace %q (namespace entry %q, line %d); %s", ns, np.name, np.line, summary)
		wh.audit.record(ctx, info.event(audit.AdmissionDeny, failedImages(failed), msg))
		return deny(resp, http.StatusForbidden, msg), outDeny
	}
	e := info.event(audit.AdmissionBreakGlass, failedImages(failed), summary)
	e.Comment = reason
	if err := wh.audit.append(ctx, e); err != nil {
		msg := fmt.Sprintf("signet-admission: break-glass refused: the audit log could not record it (%v); %s", err, summary)
		wh.log.ErrorContext(ctx, "break-glass refused: audit append failed", "namespace", ns, "user", user, "err", err)
		return deny(resp, http.StatusForbidden, msg), outDeny
	}
	wh.log.WarnContext(ctx, "break-glass", "namespace", ns, "user", user, "reason", reason, "images", failedImages(failed))
	resp.Warnings = limitWarnings(append([]string{fmt.Sprintf("signet-admission: BREAK-GLASS by %s (%q), recorded in the audit log: %s", user, reason, summary)}, warnings...))
	resp.AuditAnnotations = map[string]string{"break-glass": reason}
	wh.remember(ns, results)
	return resp, outBreakGlass
}

// decideImage decides one image in a namespace.
func (wh *Webhook) decideImage(ctx context.Context, np *nsPolicy, s string) *result {
	img, err := parseImage(s)
	if err != nil {
		return &result{img: image{written: s}, err: fmt.Errorf("not a valid image reference: %v", err)}
	}
	rule := np.ruleFor(img.repo())
	if rule == nil {
		if np.noMatch == NoMatchDeny {
			return &result{img: img, err: fmt.Errorf("no rule of namespace entry %q (line %d) covers %s, and its default is deny", np.name, np.line, img.repo())}
		}
		return &result{img: img}
	}
	return wh.verifier.verify(ctx, rule, img)
}

// reason is the failure as a denial states it: the rule, then what was
// missing.
func (r *result) reason() string {
	if r.rule == nil {
		return r.err.Error()
	}
	what := r.err.Error()
	if r.unreachable {
		what = "cannot be verified now: " + what
	}
	return r.rule.name() + ": " + what
}

func deny(resp *admissionv1.AdmissionResponse, code int32, msg string) *admissionv1.AdmissionResponse {
	resp.Allowed = false
	reason := metav1.StatusReasonForbidden
	if code == http.StatusBadRequest {
		reason = metav1.StatusReasonBadRequest
	} else if code >= 500 {
		reason = metav1.StatusReasonInternalError
	}
	resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}
	return resp
}

// limitWarnings keeps the warnings the API server passes on readable.
func limitWarnings(ws []string) []string {
	const maxWarnings, maxLen = 20, 2048
	if len(ws) > maxWarnings {
		ws = append(ws[:maxWarnings-1:maxWarnings-1], fmt.Sprintf("(%d more warnings)", len(ws)-maxWarnings+1))
	}
	for i, w := range ws {
		if len(w) > maxLen {
			ws[i] = w[:maxLen] + "…"
		}
	}
	return ws
}

// requestInfo is what audit entries say about a request.
type requestInfo struct {
	req *admissionv1.AdmissionRequest
	ns  string
	w   *workload
}

func (ri requestInfo) event(t audit.EventType, images []string, reason string) audit.Event {
	u := ri.req.UserInfo
	origin := map[string]string{
		"kind":      ri.req.Kind.Kind,
		"operation": string(ri.req.Operation),
		"uid":       string(ri.req.UID),
		"username":  u.Username,
	}
	if name := ri.w.meta.Name; name != "" {
		origin["name"] = name
	} else if ri.w.meta.GenerateName != "" {
		origin["generate_name"] = ri.w.meta.GenerateName
	}
	if len(u.Groups) > 0 {
		origin["groups"] = strings.Join(u.Groups, ",")
	}
	if u.UID != "" {
		origin["user_uid"] = u.UID
	}
	e := audit.Event{
		Type:    t,
		Actor:   audit.Actor{Kind: audit.ActorSystem, Name: "signet-admission"},
		Subject: audit.Subject{Namespace: ri.ns, User: u.Username},
		Images:  images,
		Origin:  origin,
	}
	if len(images) > 0 {
		e.Subject.Image = images[0]
	}
	e.Reason = reason
	return e
}

func failedImages(rs []*result) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rs {
		s := r.img.written
		if s == "" {
			continue
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func verifiedImages(rs []*result) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rs {
		if !r.verified() {
			continue
		}
		s := r.img.pinned(r.digest)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
