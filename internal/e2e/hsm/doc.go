// Package hsm runs the Docker Content Trust YubiKey workflow end to end
// with the root key on a PKCS#11 token: SoftHSM2 stands in for the token,
// `signet` is built with -tags pkcs11 (once, by internal/e2e/e2etest), and
// signet-server, in the test process (internal/e2e/inproc), serves
// the repository. A repository is initialised with its root key inside the
// token, targets are published, the targets and root keys are rotated with
// the token-held root, and the real `notary` CLI and `docker trust inspect`,
// which trusted the repository before each step, must still verify it.
//
// The tests are built only with -tags pkcs11 (the token code needs cgo);
// `make test` runs them. A missing SoftHSM2 skips them, unless
// SIGNET_TEST_REQUIRE contains "all" or "pkcs11"; a missing notary or docker
// CLI likewise unless it contains "all" or the program's name.
package hsm
