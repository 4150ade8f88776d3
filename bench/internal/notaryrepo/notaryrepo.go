// Package notaryrepo drives the real notary v0.7.0 client library the way the
// notary CLI does: file-cached repositories in a trust directory, an ECDSA root
// key created by the library's crypto service, keys encrypted at rest with a
// passphrase, TOFU trust pinning. It is the publish path of every benchmark.
//
// The library has no contexts; callers bound each request through the
// transport they pass in (see bench/internal/httpclient).
package notaryrepo

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"

	"github.com/sirupsen/logrus"
	"github.com/theupdateframework/notary/client"
	"github.com/theupdateframework/notary/passphrase"
	"github.com/theupdateframework/notary/trustpinning"
	"github.com/theupdateframework/notary/tuf/data"
)

func init() {
	// The library logs every retry and cache miss through the logrus global;
	// during a load run that is noise on stderr and cost on the client.
	logrus.SetLevel(logrus.ErrorLevel)
}

// Config locates a server and a trust directory.
type Config struct {
	BaseURL    string            // e.g. https://127.0.0.1:24443
	Transport  http.RoundTripper // TLS to BaseURL
	TrustDir   string            // like ~/.notary: private/ and tuf/<gun>/
	Passphrase string            // for every key the library writes
}

// Open returns the file-cached repository for gun.
func Open(cfg Config, gun string) (client.Repository, error) {
	r, err := client.NewFileCachedRepository(cfg.TrustDir, data.GUN(gun), cfg.BaseURL,
		cfg.Transport, passphrase.ConstantRetriever(cfg.Passphrase), trustpinning.TrustPinConfig{})
	if err != nil {
		return nil, fmt.Errorf("notaryrepo: open %s: %w", gun, err)
	}
	return r, nil
}

// Init creates a root key and initialises r locally (as `notary init`): the
// server is asked for its timestamp key, and for the snapshot key too when
// serverSnapshot is set. Nothing is uploaded until the first Publish.
func Init(r client.Repository, serverSnapshot bool) error {
	root, err := r.GetCryptoService().Create(data.CanonicalRootRole, r.GetGUN(), data.ECDSAKey)
	if err != nil {
		return fmt.Errorf("notaryrepo: create root key: %w", err)
	}
	var managed []data.RoleName
	if serverSnapshot {
		managed = append(managed, data.CanonicalSnapshotRole)
	}
	if err := r.Initialize([]string{root.ID()}, managed...); err != nil {
		return fmt.Errorf("notaryrepo: initialize %s: %w", r.GetGUN(), err)
	}
	return nil
}

// StageTag stages a target named tag in the targets role whose content is
// payload (sha256 only, as Docker writes them).
func StageTag(r client.Repository, tag string, payload []byte) error {
	sum := sha256.Sum256(payload)
	t := &client.Target{Name: tag, Length: int64(len(payload)), Hashes: data.Hashes{"sha256": sum[:]}}
	if err := r.AddTarget(t); err != nil {
		return fmt.Errorf("notaryrepo: add %s: %w", tag, err)
	}
	return nil
}

// Tags lists the target names of gun as the server has them, through a
// repository opened on cfg (use a fresh TrustDir to bypass any cache).
func Tags(cfg Config, gun string) ([]string, error) {
	r, err := Open(cfg, gun)
	if err != nil {
		return nil, err
	}
	ts, err := r.ListTargets()
	if err != nil {
		return nil, fmt.Errorf("notaryrepo: list %s: %w", gun, err)
	}
	names := make([]string, 0, len(ts))
	for _, t := range ts {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	return names, nil
}
