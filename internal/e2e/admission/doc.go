// Package admission holds the end-to-end tests of signet-admission: the
// binary answers AdmissionReviews over TLS about trust data that the real
// docker trust and notary clients made on signet-server and signatures
// the real cosign wrote to docker-registry, then sits behind a real
// kube-apiserver (on etcd) that calls it for Pods and Deployments. The
// audit log it writes to is the append API of internal/audit on a log of
// its own. Everything runs on 127.0.0.1 on free ports.
package admission
