package cli

// Keys on PKCS#11 tokens (the YubiKey workflow of Docker Content Trust):
// the root key can live on a token, named by an RFC 7512 pkcs11: URI. The
// token code is in keytoken_pkcs11.go, built with -tags pkcs11; without the
// tag (keytoken_nopkcs11.go) the same flags and key references explain that
// this build has no PKCS#11.

import (
	"github.com/signet-trust/signet/internal/trustdir"
)

// Environment of token access. The PIN never comes from a flag.
const (
	envPKCS11PIN     = "SIGNET_PKCS11_PIN"      // the user PIN
	envPKCS11PINFile = "SIGNET_PKCS11_PIN_FILE" // a file holding it
	envPKCS11Module  = "SIGNET_PKCS11_MODULE"   // module path when the URI has no module-path
	envPKCS11Modules = "SIGNET_PKCS11_MODULES"  // the modules a URI may name (":"-separated)
)

const rootPKCS11Help = `keep the root key on a PKCS#11 token, named by an RFC 7512 URI such as
"pkcs11:token=signet;object=root-key?module-path=/usr/lib/softhsm/libsofthsm2.so"
(the key labelled object= is used, or created inside the token when absent;
the module must be one of ` + envPKCS11Modules + `, default the SoftHSM2, OpenSC and ykcs11
modules installed in their usual places, or ` + envPKCS11Module + `;
PIN from ` + envPKCS11PIN + ` or ` + envPKCS11PINFile + ` or pin-source=file:PATH; needs a signet built with -tags pkcs11)`

// keyStore opens a trust directory's keys: key files, and references to
// keys on tokens.
func (a *app) keyStore(dir trustdir.Dir, docker bool) *trustdir.KeyStore {
	return dir.Keys(a.passphrases(docker)).WithTokens(a.openTokenKey)
}
