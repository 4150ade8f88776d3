package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// manifest is one file of deploy/kubernetes, decoded.
type manifest struct {
	header      string // the leading comment
	configMaps  map[string]*corev1.ConfigMap
	pvcs        map[string]*corev1.PersistentVolumeClaim
	services    []*corev1.Service
	deployments []*appsv1.Deployment
	pdbs        []*policyv1.PodDisruptionBudget
}

// decodeManifest splits a multi-document YAML file and decodes every
// document strictly (unknown fields are errors) into its k8s.io/api type.
func decodeManifest(t *testing.T, file string) *manifest {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m := &manifest{configMaps: map[string]*corev1.ConfigMap{}, pvcs: map[string]*corev1.PersistentVolumeClaim{}}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		m.header += l + "\n"
	}
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		js, err := sigsyaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			t.Fatalf("%s document %d: %v", file, i, err)
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(js, &tm); err != nil {
			t.Fatalf("%s document %d: %v", file, i, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ConfigMap":
			o := &corev1.ConfigMap{}
			obj, m.configMaps[nameOf(t, js)] = o, o
		case "v1 PersistentVolumeClaim":
			o := &corev1.PersistentVolumeClaim{}
			obj, m.pvcs[nameOf(t, js)] = o, o
		case "v1 Service":
			o := &corev1.Service{}
			obj, m.services = o, append(m.services, o)
		case "apps/v1 Deployment":
			o := &appsv1.Deployment{}
			obj, m.deployments = o, append(m.deployments, o)
		case "policy/v1 PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			obj, m.pdbs = o, append(m.pdbs, o)
		default:
			t.Fatalf("%s document %d: %s %s is not a kind this test knows", file, i, tm.APIVersion, tm.Kind)
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			t.Fatalf("%s document %d (%s): %v", file, i, tm.Kind, err)
		}
	}
	return m
}

func nameOf(t *testing.T, js []byte) string {
	var o struct{ Metadata metav1.ObjectMeta }
	if err := json.Unmarshal(js, &o); err != nil || o.Metadata.Name == "" {
		t.Fatalf("an object without a name: %s", js)
	}
	return o.Metadata.Name
}

// serverPod checks what every signet-server pod needs, and returns its
// configuration (the ConfigMap key its --config names) and container.
func serverPod(t *testing.T, m *manifest, d *appsv1.Deployment) (string, *corev1.Container) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("deployment %s: selector %v does not select its pods %v", d.Name, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 || psc.SeccompProfile == nil {
		t.Errorf("deployment %s: the pod must run as non-root with a seccomp profile: %+v", d.Name, psc)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("deployment %s: %d containers", d.Name, len(spec.Containers))
	}
	c := &spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil ||
		!*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("deployment %s: the container must drop every capability, not escalate, and have a read-only root: %+v", d.Name, sc)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		want := map[string]string{"readiness": "/_signet/ready", "liveness": "/_notary_server/health"}[what]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Scheme != corev1.URISchemeHTTPS || ports[p.HTTPGet.Port.StrVal] == 0 {
			t.Errorf("deployment %s: %s probe %+v, want HTTPS GET %s on a named container port", d.Name, what, p, want)
		}
	}
	for _, e := range c.Env {
		if e.Value != "" && (strings.Contains(e.Name, "PASSPHRASE") || strings.Contains(e.Name, "PASSWORD")) {
			t.Errorf("deployment %s: %s holds a secret in the manifest; take it from a Secret", d.Name, e.Name)
		}
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "SIGNET_KEY_PASSPHRASE" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
	}) {
		t.Errorf("deployment %s: SIGNET_KEY_PASSPHRASE must come from a Secret", d.Name)
	}
	// Every volume refers to something in this file, or to a Secret the
	// file's header says how to create.
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			if m.configMaps[v.ConfigMap.Name] == nil {
				t.Errorf("volume %s: no ConfigMap %s in the file", v.Name, v.ConfigMap.Name)
			}
		case v.PersistentVolumeClaim != nil:
			if m.pvcs[v.PersistentVolumeClaim.ClaimName] == nil {
				t.Errorf("volume %s: no PersistentVolumeClaim %s in the file", v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		case v.Secret != nil:
			if !regexp.MustCompile(`kubectl create secret \S+ ` + regexp.QuoteMeta(v.Secret.SecretName) + ` `).MatchString(m.header) {
				t.Errorf("volume %s: the header does not say how to create Secret %s", v.Name, v.Secret.SecretName)
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			name := e.ValueFrom.SecretKeyRef.Name
			if !regexp.MustCompile(`kubectl create secret \S+ ` + regexp.QuoteMeta(name) + ` `).MatchString(m.header) {
				t.Errorf("env %s: the header does not say how to create Secret %s", e.Name, name)
			}
		}
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		if _, ok := vols[vm.Name]; !ok {
			t.Errorf("mount %s: no such volume", vm.Name)
		}
		mounts[vm.MountPath] = vm
	}
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("deployment %s: args %q, want --config FILE", d.Name, c.Args)
	}
	vm, ok := mounts[c.Args[i+1]]
	if !ok || vols[vm.Name].ConfigMap == nil {
		t.Fatalf("deployment %s: --config %s is not a mounted ConfigMap key", d.Name, c.Args[i+1])
	}
	cfg, ok := m.configMaps[vols[vm.Name].ConfigMap.Name].Data[vm.SubPath]
	if !ok {
		t.Fatalf("deployment %s: ConfigMap %s has no key %s", d.Name, vols[vm.Name].ConfigMap.Name, vm.SubPath)
	}
	// The paths the configuration names are mounted.
	var named struct {
		DataDir       string `json:"data_dir"`
		TLSCert       string `json:"tls_cert"`
		Listen        string `json:"listen"`
		MetricsListen string `json:"metrics_listen"`
		Auth          struct {
			Htpasswd   string `json:"htpasswd"`
			SigningKey string `json:"signing_key"`
		} `json:"auth"`
	}
	if err := sigsyaml.Unmarshal([]byte(cfg), &named); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{named.DataDir, named.TLSCert, named.Auth.Htpasswd, named.Auth.SigningKey} {
		if p != "" && !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return strings.HasPrefix(p, vm.MountPath) }) {
			t.Errorf("deployment %s: %s is on no volume", d.Name, p)
		}
	}
	if named.TLSCert == "" || named.Auth.Htpasswd == "" {
		t.Errorf("deployment %s: the configuration needs its own certificate and token authentication", d.Name)
	}
	// Services select the pods and reach named container ports that the
	// configuration listens on.
	for _, s := range m.services {
		if !selects(s.Spec.Selector, d.Spec.Template.Labels) {
			t.Errorf("service %s does not select the pods of %s", s.Name, d.Name)
		}
		for _, sp := range s.Spec.Ports {
			if sp.TargetPort.Type != intstr.String || ports[sp.TargetPort.StrVal] == 0 {
				t.Errorf("service %s: port %s targets %v, not a named container port", s.Name, sp.Name, sp.TargetPort)
			}
		}
	}
	for addr, name := range map[string]string{named.Listen: "https", named.MetricsListen: "metrics"} {
		if addr != "" && !strings.HasSuffix(addr, fmt.Sprintf(":%d", ports[name])) {
			t.Errorf("deployment %s: the configuration listens on %s, container port %s is %d", d.Name, addr, name, ports[name])
		}
	}
	return cfg, c
}

func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestKubernetesSQLite: one replica (SQLite has one writer), replaced, not
// rolled, with its data directory on the claim; its configuration starts
// signet-server.
func TestKubernetesSQLite(t *testing.T) {
	m := decodeManifest(t, "kubernetes/sqlite.yaml")
	if len(m.deployments) != 1 || len(m.pvcs) != 1 || len(m.services) != 1 {
		t.Fatalf("want one Deployment, PVC and Service: %d %d %d", len(m.deployments), len(m.pvcs), len(m.services))
	}
	d := m.deployments[0]
	cfg, c := serverPod(t, m, d)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("SQLite: want replicas 1 and the Recreate strategy: %v %s", d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	var named struct {
		DataDir string `json:"data_dir"`
		DB      string `json:"db"`
	}
	_ = sigsyaml.Unmarshal([]byte(cfg), &named)
	onClaim := false
	for _, vm := range c.VolumeMounts {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && v.PersistentVolumeClaim != nil && vm.MountPath == named.DataDir {
				onClaim = true
			}
		}
	}
	if !onClaim || named.DB != "" {
		t.Errorf("SQLite: the data directory %s (and its database) must be on the claim", named.DataDir)
	}
	img := buildImage(t)
	startConfig(t, img.local(t, "/usr/local/bin/signet-server"), cfg, []string{"/etc/signet", "/var/lib/signet"}, "--metrics-listen", "127.0.0.1:0")
}

// TestKubernetesPostgres: stateless replicas on one PostgreSQL database,
// their secrets shared through Secrets (certificate, token signing key,
// key passphrase, database password); two of them started from the
// configuration serve side by side on one database.
func TestKubernetesPostgres(t *testing.T) {
	m := decodeManifest(t, "kubernetes/postgres.yaml")
	if len(m.deployments) != 1 || len(m.pvcs) != 0 || len(m.pdbs) != 1 {
		t.Fatalf("want one Deployment, no PVC, a PodDisruptionBudget: %d %d %d", len(m.deployments), len(m.pvcs), len(m.pdbs))
	}
	d := m.deployments[0]
	cfg, c := serverPod(t, m, d)
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("PostgreSQL: want several replicas, rolled: %v %s", d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	if !selects(m.pdbs[0].Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("the PodDisruptionBudget does not select the pods")
	}
	var named struct {
		DB   string `json:"db"`
		Auth struct {
			SigningKey string `json:"signing_key"`
		} `json:"auth"`
	}
	_ = sigsyaml.Unmarshal([]byte(cfg), &named)
	if !strings.HasPrefix(named.DB, "postgres://") || strings.Contains(strings.SplitN(strings.TrimPrefix(named.DB, "postgres://"), "@", 2)[0], ":") {
		t.Errorf("db %q: want a postgres:// URL without a password (PGPASSWORD)", named.DB)
	}
	if named.Auth.SigningKey == "" {
		t.Errorf("replicas need one token signing key (auth.signing_key), not one each")
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "PGPASSWORD" && e.ValueFrom != nil }) {
		t.Errorf("PGPASSWORD must come from a Secret")
	}
	img := buildImage(t)
	server := img.local(t, "/usr/local/bin/signet-server")
	db := e2etest.PostgresDB(t, "signet_deploy_")
	a, _ := startConfig(t, server, cfg, []string{"/etc/signet", "/var/lib/signet"}, "--db", db, "--metrics-listen", "127.0.0.1:0")
	b, _ := startConfig(t, server, cfg, []string{"/etc/signet", "/var/lib/signet"}, "--db", db, "--metrics-listen", "127.0.0.1:0")
	for _, r := range []*running{a, b} {
		if !strings.Contains(r.out.String(), "database postgres://") {
			t.Errorf("a replica not on PostgreSQL:\n%s", r.out)
		}
	}
}
