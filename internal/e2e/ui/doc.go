// Package ui tests the web dashboard end to end: the real signet-server
// (a subprocess), a real docker-registry, the real docker CLI delegating
// to the project's key, the real notary client checking what an approval
// in the browser signed, and a real headless Chromium driven through the
// DevTools protocol (github.com/chromedp/chromedp). The test writes a
// screenshot of each page into docs/images/ (shown in docs/ui.md).
//
// Chromium is Debian's package (scripts/test-deps.sh installs it), or
// $SIGNET_CHROMIUM_BIN; without it the test skips, or fails under
// SIGNET_TEST_REQUIRE=all (or chromium). It runs headless, without the
// sandbox (the tests run as root), speaking DevTools over a pipe (it
// listens on no port), trusting only the server's certificate (by its
// public key); the servers it talks to listen on 127.0.0.1.
package ui
