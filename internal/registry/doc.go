// Package registry is Signet's glue to OCI registries: it turns an image
// reference into the repository name (GUN) Docker Content Trust signs
// under, and resolves a tag to the digest and size of the manifest the
// registry serves for it, authenticating with the credentials of the Docker
// configuration (config.json auths, credsStore, credHelpers).
//
// Reference parsing uses go-containerregistry's name package, so names are
// read exactly as the ecosystem reads them (Docker Hub defaults included).
// The distribution API calls are made here with net/http rather than
// through go-containerregistry's remote package: that package links
// docker/cli's config loader and with it logrus, which the CLI's dependency
// budget refuses (internal/lint).
//
// Invariants: references follow Docker's grammar (no empty, "." or ".."
// component, no tag starting with "-" or "."); the digest returned is
// computed over the manifest bytes received (and must agree with the
// registry's Docker-Content-Digest when it sends one), which carry one of
// the manifest media types asked for and parse as it (schema 2 only);
// manifests larger than MaxManifestSize are refused; loopback registries
// (localhost, 127.0.0.1, ::1) are spoken to over plain HTTP as Docker
// allows, every other registry over TLS only, and no redirect leads from
// https to http. Credentials are sent only to the exact origin (scheme,
// host and port) that challenged for them — the registry they are
// configured for, the trust server AuthTransport serves, or the token
// realm a challenge names — and only over https or to a loopback host;
// a redirect off that origin drops them, a challenge from a host a
// redirect led to is not answered, and a refresh token is never
// redirected off its realm (package origin holds the rules).
package registry
