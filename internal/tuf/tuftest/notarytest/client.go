//go:build !pkcs11

// This file drives notary 0.7's client package, which under the pkcs11 build
// tag links notary's YubiKey store; that store does not build against the
// miekg/pkcs11 version this module uses, so the client oracle (and the
// differential test reading through it) exists in the default build only.

package notarytest

import (
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/theupdateframework/notary/client"
	"github.com/theupdateframework/notary/passphrase"
	"github.com/theupdateframework/notary/trustpinning"
	"github.com/theupdateframework/notary/tuf/data"
)

// Target is a target as the notary client lists it.
type Target struct {
	Role   string
	SHA256 string // hex
	Length int64
}

// List reads the repository gun from the trust server at baseURL (through
// rt) with the notary 0.7 client library, in the trust directory trustDir
// (empty: trust on first use), and returns what `notary list` shows: every
// target name with the role it comes from.
func List(trustDir, gun, baseURL string, rt http.RoundTripper) (ts map[string]Target, err error) {
	silence()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("notary panics: %v", r)
		}
	}()
	repo, err := client.NewFileCachedRepository(filepath.Clean(trustDir), data.GUN(gun), baseURL, rt,
		passphrase.ConstantRetriever("unused"), trustpinning.TrustPinConfig{})
	if err != nil {
		return nil, err
	}
	list, err := repo.ListTargets()
	if err != nil {
		return nil, err
	}
	out := map[string]Target{}
	for _, t := range list {
		out[t.Name] = Target{Role: t.Role.String(), SHA256: fmt.Sprintf("%x", t.Hashes["sha256"]), Length: t.Length}
	}
	return out, nil
}
