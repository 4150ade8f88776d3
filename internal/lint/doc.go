// Package lint holds Signet's house rules as tests (STYLE.md rule 15,
// style-anchors §6.1 and §6.3). It has no non-test code: `go test
// ./internal/lint/` is the whole interface, and a failing rule names the file
// or package that broke it and why the rule exists.
//
// The rules are:
//
//   - Dependency budgets per binary: the CLI never links SQL drivers, the
//     store, the server or key custody; the server never links PKCS#11 (nor
//     the custody core's token, custody/hsm) or signet-signer's service; no binary links the test-only canonical JSON
//     oracle (github.com/docker/go) or the libraries the project refuses
//     (logrus, gorilla/mux, viper, gorm, testify); signet-server builds
//     without cgo.
//   - Pure packages (tuf, tuf/cjson, tuf/trust, keys, policy, notaryapi,
//     jose, printable) do no I/O and no logging, never read the clock
//     (time.Now, time.Since, time.Until) and declare no init functions.
//   - Signed bytes come only from tuf/cjson: the rest of internal/tuf never
//     calls encoding/json's encoders, and internal/keys calls json.Marshal
//     only inside MarshalJSON methods.
//   - Test-helper packages (tuftest, storetest, any package whose name ends
//     in "test", and the internal/e2e harness) are imported only from
//     _test.go files.
//   - Every package under internal/ and cmd/ has a package doc comment.
//
// The tests shell out to the go command (`go list -json`) once per
// configuration and share the result; source checks use go/parser and go/ast.
package lint
