package admission

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	arv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const manifests = "../../deploy/kubernetes/admission"

// readManifests decodes every YAML document of the manifests into
// apiVersion/kind → the documents (as JSON).
func readManifests(t *testing.T) map[string][][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(manifests, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", manifests, err)
	}
	out := map[string][][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			j, err := json.Marshal(doc)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			key := doc["apiVersion"].(string) + " " + doc["kind"].(string)
			out[key] = append(out[key], j)
		}
	}
	return out
}

// strictly decodes a manifest into its Kubernetes type, refusing fields
// the type does not have (a typo would be dropped by the API server).
func strictly(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%T: %v\n%s", v, err, b)
	}
}

func TestManifests(t *testing.T) {
	m := readManifests(t)
	one := func(key string, v any) {
		t.Helper()
		if len(m[key]) != 1 {
			t.Fatalf("%d %s, want 1", len(m[key]), key)
		}
		strictly(t, m[key][0], v)
	}
	var ns corev1.Namespace
	var sa corev1.ServiceAccount
	var cm corev1.ConfigMap
	var dep appsv1.Deployment
	var svc corev1.Service
	var mwc arv1.MutatingWebhookConfiguration
	var vwc arv1.ValidatingWebhookConfiguration
	one("v1 Namespace", &ns)
	one("v1 ServiceAccount", &sa)
	one("v1 ConfigMap", &cm)
	one("apps/v1 Deployment", &dep)
	one("v1 Service", &svc)
	one("admissionregistration.k8s.io/v1 MutatingWebhookConfiguration", &mwc)
	one("admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration", &vwc)
	var role rbacv1.ClusterRole
	var binding rbacv1.ClusterRoleBinding
	one("rbac.authorization.k8s.io/v1 ClusterRole", &role)
	one("rbac.authorization.k8s.io/v1 ClusterRoleBinding", &binding)
	if binding.RoleRef.Name != role.Name || binding.Subjects[0].Name != sa.Name || binding.Subjects[0].Namespace != ns.Name ||
		!slices.Equal(role.Rules[0].Resources, []string{"pods"}) || !slices.Equal(role.Rules[0].Verbs, []string{"list"}) {
		t.Errorf("the pod reader binds %+v to %+v", binding, role)
	}
	if len(m["cert-manager.io/v1 Certificate"]) != 1 || len(m["cert-manager.io/v1 Issuer"]) != 1 {
		t.Fatalf("no cert-manager Certificate and Issuer")
	}

	// The example policy is a valid policy file.
	if _, err := ParseConfig([]byte(cm.Data["policy.yaml"])); err != nil {
		t.Fatalf("the ConfigMap's policy.yaml: %v", err)
	}

	// The Deployment runs the binary with the files it mounts.
	c := dep.Spec.Template.Spec.Containers[0]
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.Name] = vm.MountPath
	}
	vols := map[string]corev1.Volume{}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	for _, a := range c.Args {
		flag, val, _ := strings.Cut(a, "=")
		switch flag {
		case "--tls-cert", "--tls-key", "--policy":
			if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return strings.HasPrefix(val, vm.MountPath+"/") }) {
				t.Errorf("%s=%s is under no volume mount", flag, val)
			}
		}
	}
	if v := vols["policy"]; v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
		t.Errorf("policy volume %+v, want ConfigMap %s", v, cm.Name)
	}
	if v := vols["tls"]; v.Secret == nil || v.Secret.SecretName != "signet-admission-tls" {
		t.Errorf("tls volume %+v", v)
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("the container's root filesystem is writable")
	}
	if len(c.Ports) != 1 || svc.Spec.Ports[0].TargetPort.StrVal != c.Ports[0].Name || svc.Spec.Selector["app.kubernetes.io/name"] != dep.Spec.Template.Labels["app.kubernetes.io/name"] {
		t.Errorf("the Service does not reach the Deployment's port: %+v %+v", svc.Spec, c.Ports)
	}

	// Both webhooks: Fail, no side effects, v1 reviews, never kube-system
	// nor the webhook's own namespace, every kind with a pod template,
	// the CA injected by cert-manager, the service and path.
	check := func(name string, cc arv1.WebhookClientConfig, fp *arv1.FailurePolicyType, se *arv1.SideEffectClass, sel *metav1.LabelSelector, rules []arv1.RuleWithOperations, ann map[string]string, path string) {
		t.Helper()
		if fp == nil || *fp != arv1.Fail || se == nil || *se != arv1.SideEffectClassNone {
			t.Errorf("%s: failurePolicy %v sideEffects %v", name, fp, se)
		}
		if cc.Service == nil || cc.Service.Name != svc.Name || cc.Service.Namespace != ns.Name || cc.Service.Path == nil || *cc.Service.Path != path {
			t.Errorf("%s: clientConfig %+v", name, cc)
		}
		if ann["cert-manager.io/inject-ca-from"] != ns.Name+"/signet-admission" {
			t.Errorf("%s: no cert-manager CA injection", name)
		}
		excluded := false
		for _, e := range sel.MatchExpressions {
			excluded = excluded || (e.Key == "kubernetes.io/metadata.name" && e.Operator == "NotIn" && slices.Contains(e.Values, "kube-system") && slices.Contains(e.Values, ns.Name))
		}
		if !excluded {
			t.Errorf("%s: namespaceSelector does not exclude kube-system and %s", name, ns.Name)
		}
		var resources []string
		for _, r := range rules {
			for _, res := range r.Resources {
				resources = append(resources, strings.Join(r.APIGroups, "")+"/"+res)
			}
		}
		for _, want := range []string{"/pods", "apps/deployments", "apps/statefulsets", "apps/daemonsets", "apps/replicasets", "batch/jobs", "batch/cronjobs"} {
			if !slices.Contains(resources, want) {
				t.Errorf("%s: %s is not sent to the webhook", name, want)
			}
		}
	}
	mw, vw := mwc.Webhooks[0], vwc.Webhooks[0]
	check("mutating", mw.ClientConfig, mw.FailurePolicy, mw.SideEffects, mw.NamespaceSelector, mw.Rules, mwc.Annotations, "/mutate")
	check("validating", vw.ClientConfig, vw.FailurePolicy, vw.SideEffects, vw.NamespaceSelector, vw.Rules, vwc.Annotations, "/validate")
	if mw.ReinvocationPolicy == nil || *mw.ReinvocationPolicy != arv1.IfNeededReinvocationPolicy {
		t.Errorf("mutating webhook without reinvocationPolicy IfNeeded")
	}
	if *mw.TimeoutSeconds > 10 || *vw.TimeoutSeconds > 10 {
		t.Errorf("timeouts %d, %d: the policy's decision timeout assumes at most 10 s", *mw.TimeoutSeconds, *vw.TimeoutSeconds)
	}
}
