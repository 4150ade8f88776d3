// Package trustdir is the trust directory that the notary client, docker
// trust and signet share (~/.notary, ~/.docker/trust):
//
//	private/<canonical key ID>.key        encrypted PKCS#8 key files (0600; dir 0700)
//	private/<canonical key ID>.pkcs11     reference to a key held on a PKCS#11 token
//	tuf/<GUN>/metadata/<role>.json        verified metadata cache
//	tuf/<GUN>/changelist/<n>_<uuid>.change staged changes
//
// Files are written through a temporary file and a rename, so a crash
// leaves the old file or the new one.
//
// Invariants: repository paths are built only from a tuf.GUN (no empty,
// "." or ".." segment), and a repository, metadata or changelist path that
// a symbolic link inside the directory leads outside tuf/ is refused
// (ErrOutside) before it is read, written or removed; files are read back
// with a size bound (MaxKeyFile, MaxMetadataFile), so a link to /dev/zero
// fails instead of exhausting memory.
package trustdir

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/signet-trust/signet/internal/atomicfile"
	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
)

// Dir is a trust directory.
type Dir struct {
	Path string
}

// ErrOutside reports a path that would leave the trust directory: a
// repository directory, metadata file or changelist reached through a
// symbolic link that points elsewhere.
var ErrOutside = errors.New("trustdir: path leaves the trust directory")

// tufRoot is the directory every repository lives under.
func (d Dir) tufRoot() string { return filepath.Join(d.Path, "tuf") }

// repoDir returns tuf/<gun>. The GUN is valid (no empty, "." or ".."
// segment), so the joined path is below tuf/; inside checks that no
// symbolic link on the way leads out of it.
func (d Dir) repoDir(gun tuf.GUN) (string, error) {
	root := d.tufRoot()
	p := filepath.Join(root, filepath.FromSlash(gun.String()))
	if err := inside(root, p); err != nil {
		return "", err
	}
	return p, nil
}

// inside checks that p is below root once the symbolic links of the part
// of p that exists are resolved (a link inside root pointing inside root
// is fine; root itself may be a link). Nothing resolves when root does
// not exist yet.
func inside(root, p string) error {
	if !below(root, p) {
		return fmt.Errorf("%w: %s is not below %s", ErrOutside, p, root)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("trustdir: %w", err)
	}
	for q := p; ; q = filepath.Dir(q) {
		// The deepest part of p that exists; a dangling link counts as
		// existing, and does not resolve.
		if _, err := os.Lstat(q); errors.Is(err, fs.ErrNotExist) && q != root {
			continue
		} else if err != nil {
			return fmt.Errorf("trustdir: %w", err)
		}
		real, err := filepath.EvalSymlinks(q)
		if err != nil {
			return fmt.Errorf("%w: %s does not resolve: %v", ErrOutside, q, err)
		}
		if real != realRoot && !below(realRoot, real) {
			return fmt.Errorf("%w: %s leads to %s, outside %s", ErrOutside, q, real, root)
		}
		return nil
	}
}

// below reports whether p is strictly below root, lexically.
func below(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// Cache returns the metadata cache of a repository.
func (d Dir) Cache(gun tuf.GUN) (*Cache, error) {
	dir, err := d.repoDir(gun)
	if err != nil {
		return nil, err
	}
	return &Cache{root: d.tufRoot(), dir: filepath.Join(dir, "metadata")}, nil
}

// Changelist returns the staged changes of a repository.
func (d Dir) Changelist(gun tuf.GUN) (changes.List, error) {
	dir, err := d.repoDir(gun)
	if err != nil {
		return changes.List{}, err
	}
	cl := filepath.Join(dir, "changelist")
	if err := inside(d.tufRoot(), cl); err != nil {
		return changes.List{}, err
	}
	return changes.List{Dir: cl}, nil
}

// RemoveRepo deletes the local metadata and changelist of a repository.
func (d Dir) RemoveRepo(gun tuf.GUN) error {
	dir, err := d.repoDir(gun)
	if err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// Cache is a repository's metadata cache; it implements client.Cache.
type Cache struct{ root, dir string }

// MaxMetadataFile bounds a cached metadata file read back (the largest
// file the client downloads, client.MaxMetadataSize).
const MaxMetadataFile = 100 << 20

func (c *Cache) path(role string) (string, error) {
	if !tuf.ValidRole(role) {
		return "", fmt.Errorf("trustdir: invalid role %q", role)
	}
	p := filepath.Join(c.dir, filepath.FromSlash(role)+".json")
	if err := inside(c.root, p); err != nil {
		return "", err
	}
	return p, nil
}

// Get returns the cached bytes of a role, or nil if none.
func (c *Cache) Get(role string) ([]byte, error) {
	p, err := c.path(role)
	if err != nil {
		return nil, err
	}
	b, err := atomicfile.ReadFile(p, MaxMetadataFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Put caches the bytes of a role.
func (c *Cache) Put(role string, data []byte) error {
	p, err := c.path(role)
	if err != nil {
		return err
	}
	return atomicfile.Write(p, data, 0o600)
}

// Passphrases supplies key passphrases. keyID is the canonical key ID and
// role the key file's role header (root, targets, snapshot, a delegation
// name or a docker signer name); create is set when a passphrase is chosen
// for a new key file; attempt counts wrong answers.
type Passphrases func(keyID, role string, create bool, attempt int) ([]byte, error)

// MaxKeyFile bounds a key file or token reference read from private/ (a
// key file is a few hundred bytes).
const MaxKeyFile = 1 << 20

// KeyStore is the private/ directory; it implements client.KeyStore.
type KeyStore struct {
	dir         string
	passphrases Passphrases
	cache       map[string]*keys.PrivateKey
	tokens      TokenOpener
	tokenKeys   map[string]crypto.Signer
}

// Keys returns the key store of the directory.
func (d Dir) Keys(p Passphrases) *KeyStore {
	return &KeyStore{dir: filepath.Join(d.Path, "private"), passphrases: p, cache: map[string]*keys.PrivateKey{}, tokenKeys: map[string]crypto.Signer{}}
}

// TokenRef records that the private key with a canonical key ID is held on
// a hardware token, not in a key file: private/<ID>.pkcs11 holds the key's
// role and a pkcs11: URI (RFC 7512: module, token, key label and ID; never
// a PIN). The notary client and docker read only *.key files in private/,
// so they ignore these references.
type TokenRef struct {
	ID   string `json:"-"` // canonical key ID (file name)
	Role string `json:"role"`
	URI  string `json:"uri"`
	Path string `json:"-"`
}

// TokenRefExt is the file extension of token references.
const TokenRefExt = ".pkcs11"

// TokenOpener returns the signer of a key a TokenRef names (it logs in to
// the token, which may block). The key store checks that its public key
// has the ID.
type TokenOpener func(ctx context.Context, ref TokenRef) (crypto.Signer, error)

// WithTokens sets how token-held keys are reached and returns ks. Without
// it, Signer reports token-held keys as unavailable, with the reason.
func (ks *KeyStore) WithTokens(open TokenOpener) *KeyStore {
	ks.tokens = open
	return ks
}

// AddTokenRef records that the key with public key pub, for role, is held
// on the token at uri. It returns the canonical key ID.
func (ks *KeyStore) AddTokenRef(pub crypto.PublicKey, role, uri string) (string, error) {
	k, err := keys.FromCrypto(pub)
	if err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(TokenRef{Role: role, URI: uri}, "", "  ")
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(filepath.Join(ks.dir, k.ID()+TokenRefExt), append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	delete(ks.tokenKeys, k.ID())
	return k.ID(), nil
}

// TokenRefs lists the token references, sorted by role then ID.
func (ks *KeyStore) TokenRefs() ([]TokenRef, error) {
	ents, err := os.ReadDir(ks.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []TokenRef
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), TokenRefExt)
		if !ok || e.IsDir() {
			continue
		}
		p := filepath.Join(ks.dir, e.Name())
		b, err := atomicfile.ReadFile(p, MaxKeyFile)
		if err != nil {
			return nil, err
		}
		var ref TokenRef
		if err := json.Unmarshal(b, &ref); err != nil || ref.URI == "" {
			return nil, fmt.Errorf("token reference %s is malformed: %v", p, err)
		}
		ref.ID, ref.Path = id, p
		out = append(out, ref)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Role != out[j].Role {
			return out[i].Role < out[j].Role
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (ks *KeyStore) tokenRef(id string) (TokenRef, bool, error) {
	refs, err := ks.TokenRefs()
	if err != nil {
		return TokenRef{}, false, err
	}
	for _, r := range refs {
		if r.ID == id {
			return r, true, nil
		}
	}
	return TokenRef{}, false, nil
}

// tokenSigner reaches a token-held key; ok is false when id has no
// reference.
func (ks *KeyStore) tokenSigner(ctx context.Context, id string) (crypto.Signer, bool, error) {
	if s := ks.tokenKeys[id]; s != nil {
		return s, true, nil
	}
	ref, ok, err := ks.tokenRef(id)
	if err != nil || !ok {
		return nil, false, err
	}
	if ks.tokens == nil {
		return nil, false, fmt.Errorf("the %s key %s is held on a token (%s), and this program cannot reach tokens", roleName(ref.Role), short(id), ref.URI)
	}
	s, err := ks.tokens(ctx, ref)
	if err != nil {
		return nil, false, fmt.Errorf("the %s key %s on the token (%s): %w", roleName(ref.Role), short(id), ref.URI, err)
	}
	pub, err := keys.FromCrypto(s.Public())
	if err != nil {
		return nil, false, fmt.Errorf("the %s key on the token (%s): %w", roleName(ref.Role), ref.URI, err)
	}
	if pub.ID() != id {
		return nil, false, fmt.Errorf("the token key %s names is key %s, not %s as %s says", ref.URI, short(pub.ID()), short(id), ref.Path)
	}
	ks.tokenKeys[id] = s
	return s, true, nil
}

// KeyInfo describes a key file without decrypting it.
type KeyInfo struct {
	ID   string // canonical key ID (file name)
	Role string
	GUN  string
	Path string
}

// List returns the key files, sorted by role then GUN then ID.
func (ks *KeyStore) List() ([]KeyInfo, error) {
	var out []KeyInfo
	err := filepath.WalkDir(ks.dir, func(p string, e os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		if e.IsDir() || !strings.HasSuffix(p, ".key") {
			return nil
		}
		b, err := atomicfile.ReadFile(p, MaxKeyFile)
		if err != nil {
			return err
		}
		info, err := keys.InspectPrivateKeyPEM(b)
		if err != nil {
			return nil // not a key file: ignored, as notary does
		}
		id := strings.TrimSuffix(filepath.Base(p), ".key")
		if i := strings.LastIndex(id, "_"); i > 0 { // legacy <id>_<role>.key
			id = id[:i]
		}
		out = append(out, KeyInfo{ID: id, Role: info.Role, GUN: info.GUN, Path: p})
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Role != b.Role {
			return a.Role < b.Role
		}
		if a.GUN != b.GUN {
			return a.GUN < b.GUN
		}
		return a.ID < b.ID
	})
	return out, err
}

func (ks *KeyStore) find(id string) (KeyInfo, bool, error) {
	list, err := ks.List()
	if err != nil {
		return KeyInfo{}, false, err
	}
	for _, k := range list {
		if k.ID == id {
			return k, true, nil
		}
	}
	return KeyInfo{}, false, nil
}

// Signer decrypts the key with canonical ID id, or reaches it on its token
// (see TokenRef); ok is false when neither a key file nor a token
// reference exists. It implements client.KeyStore.
func (ks *KeyStore) Signer(ctx context.Context, id string) (crypto.Signer, bool, error) {
	k, ok, err := ks.Load(id)
	if err != nil {
		return nil, false, err
	}
	if ok {
		return k, true, nil
	}
	return ks.tokenSigner(ctx, id)
}

// Load decrypts a key.
func (ks *KeyStore) Load(id string) (*keys.PrivateKey, bool, error) {
	if k := ks.cache[id]; k != nil {
		return k, true, nil
	}
	info, ok, err := ks.find(id)
	if err != nil || !ok {
		return nil, false, err
	}
	b, err := atomicfile.ReadFile(info.Path, MaxKeyFile)
	if err != nil {
		return nil, false, err
	}
	k, err := keys.ParsePrivateKeyPEM(b, func(attempt int) ([]byte, error) {
		if ks.passphrases == nil {
			return nil, keys.ErrPassphraseRequired
		}
		return ks.passphrases(id, info.Role, false, attempt)
	})
	if err != nil {
		if errors.Is(err, keys.ErrWrongPassphrase) {
			return nil, false, fmt.Errorf("the passphrase for the %s key %s (%s) is wrong: %w", roleName(info.Role), short(id), info.Path, err)
		}
		return nil, false, fmt.Errorf("key %s (%s): %w", short(id), info.Path, err)
	}
	if k.ID() != id {
		return nil, false, fmt.Errorf("key file %s holds key %s, not %s", info.Path, short(k.ID()), short(id))
	}
	ks.cache[id] = k
	return k, true, nil
}

func roleName(role string) string {
	if role == "" {
		return "unnamed"
	}
	return role
}

func short(id string) string {
	if len(id) > 7 {
		return id[:7]
	}
	return id
}

// Add writes a new key file for signer under role (and gun, for targets and
// snapshot keys), encrypted with a passphrase chosen through Passphrases.
// It returns the canonical key ID.
func (ks *KeyStore) Add(signer crypto.Signer, role, gun string) (string, error) {
	pub, err := keys.FromCrypto(signer.Public())
	if err != nil {
		return "", err
	}
	id := pub.ID()
	var pass []byte
	if ks.passphrases != nil {
		if pass, err = ks.passphrases(id, role, true, 0); err != nil {
			return "", err
		}
	}
	b, err := keys.MarshalPrivateKeyPEM(signer, role, gun, pass)
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(filepath.Join(ks.dir, id+".key"), b, 0o600); err != nil {
		return "", err
	}
	delete(ks.cache, id)
	return id, nil
}

// Remove deletes a key file, or a token reference (the key stays on the
// token).
func (ks *KeyStore) Remove(id string) error {
	info, ok, err := ks.find(id)
	if err != nil {
		return err
	}
	if !ok {
		ref, ok, err := ks.tokenRef(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no key with ID %s in %s", id, ks.dir)
		}
		delete(ks.tokenKeys, id)
		return os.Remove(ref.Path)
	}
	delete(ks.cache, id)
	return os.Remove(info.Path)
}

// RootKeys lists the root keys held, for reuse by new repositories.
func (ks *KeyStore) RootKeys() ([]KeyInfo, error) {
	list, err := ks.List()
	var out []KeyInfo
	for _, k := range list {
		if k.Role == tuf.RoleRoot {
			out = append(out, k)
		}
	}
	return out, err
}
