package pkcs11

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Loading a PKCS#11 module runs its code in our process, with our keys and
// credentials: a module path is as sensitive as the binary itself. So a
// module is loaded only when it is an absolute path to a regular file that
// only its owner may write (CheckModule), and the client loads only the
// modules of an allow-list (ModuleAllowList): a pkcs11: URI found in a
// trust directory or passed on a command line cannot make it load a
// library the operator did not choose.

var (
	// ErrModule reports a PKCS#11 module (library) that is missing or
	// does not load.
	ErrModule = errors.New("pkcs11: module not usable")
	// ErrModuleRefused reports a module path that is not loaded: relative,
	// not a regular file, writable by group or other, or (in the client)
	// not in the allow-list.
	ErrModuleRefused = errors.New("pkcs11: module refused")
)

// WellKnownModules are where Debian, Fedora and others install SoftHSM2,
// OpenSC and Yubico's ykcs11. The allow-list of a client that was given
// none is those of them present on the machine (DefaultModules).
var WellKnownModules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
	"/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
	"/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
	"/usr/lib/aarch64-linux-gnu/pkcs11/opensc-pkcs11.so",
	"/usr/lib64/opensc-pkcs11.so",
	"/usr/lib64/pkcs11/opensc-pkcs11.so",
	"/usr/local/lib/opensc-pkcs11.so",
	"/usr/lib/x86_64-linux-gnu/libykcs11.so",
	"/usr/lib/aarch64-linux-gnu/libykcs11.so",
	"/usr/lib64/libykcs11.so",
	"/usr/local/lib/libykcs11.so",
}

// CheckModule reports whether path may be loaded as a PKCS#11 module: an
// absolute path naming (through symbolic links) a regular file that
// neither group nor other may write. A missing file is ErrModule (with a
// hint to install it); any other refusal is ErrModuleRefused.
func CheckModule(path string) error {
	if path == "" {
		return fmt.Errorf("%w: no module path (module-path= in the pkcs11: URI)", ErrModule)
	}
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%w: %q is not an absolute path; name the PKCS#11 library by its full path, e.g. /usr/lib/softhsm/libsofthsm2.so", ErrModuleRefused, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: %s: %v (install the token's PKCS#11 library, e.g. apt-get install softhsm2 or ykcs11)", ErrModule, path, errors.Unwrap(err))
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file (%s)", ErrModuleRefused, path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%w: %s may be written by group or other (mode %04o): anyone who can replace it runs code in this process; chmod go-w it", ErrModuleRefused, path, perm)
	}
	return nil
}

// ModuleAllowList is the set of modules a client may load.
type ModuleAllowList struct {
	paths []string // as given, cleaned
}

// NewModuleAllowList allows the given module paths; each must be
// absolute.
func NewModuleAllowList(paths ...string) (ModuleAllowList, error) {
	var l ModuleAllowList
	for _, p := range paths {
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			return l, fmt.Errorf("%w: allow-list entry %q is not an absolute path", ErrModuleRefused, p)
		}
		l.paths = append(l.paths, filepath.Clean(p))
	}
	return l, nil
}

// ParseModuleList reads a list of module paths separated by the path list
// separator (":" on Unix), as in SIGNET_PKCS11_MODULES.
func ParseModuleList(s string) (ModuleAllowList, error) {
	return NewModuleAllowList(filepath.SplitList(s)...)
}

// DefaultModules allows the WellKnownModules present on this machine.
func DefaultModules() ModuleAllowList {
	var l ModuleAllowList
	for _, p := range WellKnownModules {
		if _, err := os.Stat(p); err == nil {
			l.paths = append(l.paths, p)
		}
	}
	return l
}

// Paths lists the allowed modules.
func (l ModuleAllowList) Paths() []string { return slices.Clone(l.paths) }

// Check allows path when it is one of the list's paths, or the same file
// once symbolic links are resolved (so /usr/lib/softhsm/libsofthsm2.so
// and the file it links to are one module), and passes CheckModule.
// env names the variable that extends the list, for the message.
func (l ModuleAllowList) Check(path, env string) error {
	if err := CheckModule(path); err != nil {
		return err
	}
	clean := filepath.Clean(path)
	real, err := filepath.EvalSymlinks(clean)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrModule, path, err)
	}
	for _, p := range l.paths {
		if p == clean {
			return nil
		}
		if r, err := filepath.EvalSymlinks(p); err == nil && r == real {
			return nil
		}
	}
	allowed := "none"
	if len(l.paths) > 0 {
		allowed = strings.Join(l.paths, ", ")
	}
	return fmt.Errorf("%w: %s is not an allowed PKCS#11 module (allowed: %s); if you trust it, add it to %s", ErrModuleRefused, path, allowed, env)
}
