package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	admissionv1 "k8s.io/api/admission/v1"
)

// maxReview bounds an AdmissionReview body (the API server's own limit on
// an object is 3 MiB; old and new object both travel in an UPDATE).
const maxReview = 8 << 20

// Webhook answers admission reviews under a loaded policy.
type Webhook struct {
	policy   *Policy
	verifier *verifier
	audit    *auditSink
	metrics  *metrics
	ledger   *ledger
	// pods lists the running pods for revalidation (nil: only what this
	// process admitted is revalidated).
	pods           *podLister
	runningFailing failingSet
	log            *slog.Logger
	now            func() time.Time
}

// Options are New's dependencies.
type Options struct {
	Policy *Policy
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Pods, when set, lists the running pods, which revalidation then
	// covers too.
	Pods *PodSource
}

// PodSource is where the running pods are listed: the Kubernetes API at
// URL with the bearer token in TokenFile, trusting CAFile; empty values
// are the in-cluster ones.
type PodSource struct {
	URL, TokenFile, CAFile string
	Getenv                 func(string) string
}

// New makes a webhook. Start runs what works in the background.
func New(o Options) (*Webhook, error) {
	if o.Policy == nil {
		return nil, errors.New("admission: no policy")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	wh := &Webhook{policy: o.Policy, log: o.Logger, now: o.Now}
	wh.metrics = newMetrics(func() int { return wh.verifier.trust.size() })
	wh.verifier = newVerifier(o.Policy, o.Now, wh.metrics)
	wh.audit = newAuditSink(o.Policy, o.Logger, wh.metrics)
	wh.ledger = &ledger{entries: newLRU[*admitted](o.Policy.cfg.Cache.MaxEntries)}
	if ps := o.Pods; ps != nil {
		getenv := ps.Getenv
		if getenv == nil {
			getenv = func(string) string { return "" }
		}
		l, err := newPodLister(getenv, ps.URL, ps.TokenFile, ps.CAFile)
		if err != nil {
			return nil, err
		}
		wh.pods = l
	}
	return wh, nil
}

// Start runs the audit queue and, with an interval, continuous
// validation, until ctx ends. Wait returns when they have stopped.
func (wh *Webhook) Start(ctx context.Context, revalidate time.Duration) {
	wh.audit.start(ctx)
	if revalidate > 0 {
		go wh.revalidateLoop(ctx, revalidate)
	}
}

// Wait waits for the audit queue to be drained after Start's context
// ended.
func (wh *Webhook) Wait() { wh.audit.wg.Wait() }

// Handler serves POST /validate, POST /mutate, GET /healthz and GET
// /metrics.
func (wh *Webhook) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/validate", wh.reviewHandler(false))
	mux.Handle("/mutate", wh.reviewHandler(true))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(wh.metrics.reg, promhttp.HandlerOpts{}))
	return mux
}

// httpError is a refused HTTP request: a plain-text sentence.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

// DecodeReview reads an AdmissionReview request as the API server sends
// it: admission.k8s.io/v1, with a request that has a UID, a kind and an
// operation. Unknown fields are ignored (newer API servers add some).
func DecodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	var rev admissionv1.AdmissionReview
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&rev); err != nil {
		return nil, fmt.Errorf("the body is not an AdmissionReview: %v", err)
	}
	if dec.More() {
		return nil, errors.New("the body holds more than one JSON value")
	}
	switch {
	case rev.APIVersion != admissionv1.SchemeGroupVersion.String() || rev.Kind != "AdmissionReview":
		return nil, fmt.Errorf("apiVersion %q kind %q: want admission.k8s.io/v1 AdmissionReview", rev.APIVersion, rev.Kind)
	case rev.Request == nil:
		return nil, errors.New("the AdmissionReview has no request")
	case rev.Request.UID == "":
		return nil, errors.New("the request has no uid")
	case rev.Request.Kind.Kind == "" || rev.Request.Kind.Version == "":
		return nil, errors.New("the request has no kind")
	case rev.Request.Operation == "":
		return nil, errors.New("the request has no operation")
	case rev.Response != nil:
		return nil, errors.New("the AdmissionReview already has a response")
	}
	return &rev, nil
}

func (wh *Webhook) reviewHandler(mutate bool) http.Handler {
	name := "validate"
	if mutate {
		name = "mutate"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			httpError(w, http.StatusMethodNotAllowed, "POST an AdmissionReview")
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			httpError(w, http.StatusUnsupportedMediaType, "the AdmissionReview must be sent as application/json")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReview))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("an AdmissionReview is at most %d bytes", maxReview))
				return
			}
			httpError(w, http.StatusBadRequest, "reading the body: "+err.Error())
			return
		}
		rev, err := DecodeReview(body)
		if err != nil {
			wh.metrics.decisions.WithLabelValues(name, string(outError)).Inc()
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), wh.deadline(r))
		defer cancel()
		resp, out := wh.review(ctx, rev.Request, mutate)
		wh.metrics.decisions.WithLabelValues(name, string(out)).Inc()
		wh.metrics.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
		if out != outSkip {
			level := slog.LevelDebug
			if out == outDeny || out == outError || out == outBreakGlass {
				level = slog.LevelInfo
			}
			msg := ""
			if resp.Result != nil {
				msg = resp.Result.Message
			}
			wh.log.Log(ctx, level, "admission review", "webhook", name, "outcome", out, "uid", rev.Request.UID,
				"kind", rev.Request.Kind.Kind, "namespace", rev.Request.Namespace, "name", rev.Request.Name,
				"user", rev.Request.UserInfo.Username, "message", msg, "duration", time.Since(start))
		}
		out2 := admissionv1.AdmissionReview{TypeMeta: rev.TypeMeta, Response: resp}
		b, err := json.Marshal(out2)
		if err != nil {
			httpError(w, http.StatusInternalServerError, "encoding the answer failed")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
}

// deadline is how long a review may take: the policy's timeout, and less
// than the API server's own (its ?timeout= parameter) by a margin.
func (wh *Webhook) deadline(r *http.Request) time.Duration {
	d := wh.policy.cfg.Timeout.D()
	if s := r.URL.Query().Get("timeout"); s != "" {
		if t, err := time.ParseDuration(s); err == nil && t > 0 {
			margin := t / 5
			if margin > time.Second {
				margin = time.Second
			}
			if t-margin < d {
				d = t - margin
			}
		}
	}
	return d
}
