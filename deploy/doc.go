// Package deploy holds Signet's packaging, and its tests: the container
// image (Dockerfile, docker/server.yaml), the systemd unit (systemd/) and
// the Kubernetes manifests (kubernetes/: SQLite with a volume, PostgreSQL
// with replicas). The package has no code; its tests build and check each
// of them with what this machine has (no container engine, no cluster):
// the Dockerfile's build stage is run command by command, its final stage
// checked and its entrypoint and health check run; the unit goes through
// systemd-analyze verify; the manifests decode strictly into the
// k8s.io/api types; and every configuration file they carry starts
// signet-server.
package deploy
