package admission

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// BenchmarkValidateWarm is the CPU of one /validate decision with the
// repository's trust data cached (the handler in process, no network):
//
//	go test -run '^$' -bench ValidateWarm -benchmem ./internal/admission/
//
// The end-to-end figures over TLS are TestAdmissionBench's
// (internal/e2e/admission, make bench-admission).
func BenchmarkValidateWarm(b *testing.B) {
	const gun = "r.example/team/app"
	repo := tuftest.NewRepo(b, gun, time.Now())
	alice := tuftest.NewKey(b)
	repo.Delegate("targets/alice", []string{""}, alice)
	repo.AddTarget("targets/alice", "v1", []byte("v1"))
	repo.SignAll()
	ts := tuftest.NewServer(gun)
	ts.Publish(repo)
	srv := httptest.NewTLSServer(ts)
	b.Cleanup(srv.Close)
	dir := b.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		b.Fatal(err)
	}
	policy := fmt.Sprintf("trust_server: %s\ntrust_ca: %s\nnamespaces:\n  - name: prod\n    rules:\n      - images: \"r.example/**\"\n        dct: {signers: [alice]}\n", srv.URL, ca)
	p, err := Load([]byte(policy), dir)
	if err != nil {
		b.Fatal(err)
	}
	wh, err := New(Options{Policy: p})
	if err != nil {
		b.Fatal(err)
	}
	h := wh.Handler()
	obj, _ := json.Marshal(&corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: gun + ":v1"}}}})
	body, _ := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "u", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "prod",
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: obj}},
	})
	do := func() {
		req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"allowed":true`) {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	do() // cold: fetches and verifies the trust data
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		do()
	}
}
