package pkcs11

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeModule writes a stand-in module file with mode perm (the checks
// look at the file, not its contents; nothing here loads it).
func writeModule(t *testing.T, dir, name string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("\x7fELF not really"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // umask does not apply
		t.Fatal(err)
	}
	return p
}

func TestCheckModule(t *testing.T) {
	dir := t.TempDir()
	good := writeModule(t, dir, "libgood.so", 0o755)
	groupW := writeModule(t, dir, "libgroup.so", 0o775)
	otherW := writeModule(t, dir, "libother.so", 0o646)
	link := filepath.Join(dir, "liblink.so")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	badLink := filepath.Join(dir, "libbadlink.so")
	if err := os.Symlink(otherW, badLink); err != nil {
		t.Fatal(err)
	}
	if err := CheckModule(good); err != nil {
		t.Errorf("a 0755 module: %v", err)
	}
	if err := CheckModule(link); err != nil {
		t.Errorf("a link to a 0755 module: %v", err)
	}
	for _, tc := range []struct {
		name, path string
		is         error
		want       string
	}{
		{"empty", "", ErrModule, "no module path"},
		{"relative", "libgood.so", ErrModuleRefused, "not an absolute path"},
		{"dot relative", "./lib/libsofthsm2.so", ErrModuleRefused, "not an absolute path"},
		{"missing", filepath.Join(dir, "libnone.so"), ErrModule, "install"},
		{"directory", dir, ErrModuleRefused, "not a regular file"},
		{"device", "/dev/null", ErrModuleRefused, "not a regular file"},
		{"group writable", groupW, ErrModuleRefused, "mode 0775"},
		{"other writable", otherW, ErrModuleRefused, "mode 0646"},
		{"link to a writable file", badLink, ErrModuleRefused, "group or other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckModule(tc.path)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckModule(%q) = %v, want %v saying %q", tc.path, err, tc.is, tc.want)
			}
		})
	}
}

func TestModuleAllowList(t *testing.T) {
	dir := t.TempDir()
	allowed := writeModule(t, dir, "liballowed.so", 0o644)
	other := writeModule(t, dir, "libother.so", 0o644)
	writable := writeModule(t, dir, "libwritable.so", 0o666)
	link := filepath.Join(dir, "liblink.so")
	if err := os.Symlink(allowed, link); err != nil {
		t.Fatal(err)
	}
	l, err := ParseModuleList(allowed + string(filepath.ListSeparator) + writable + string(filepath.ListSeparator))
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Paths(); len(got) != 2 {
		t.Fatalf("Paths = %q", got)
	}
	for _, p := range []string{allowed, filepath.Join(dir, ".", "liballowed.so"), link} {
		if err := l.Check(p, "SIGNET_PKCS11_MODULES"); err != nil {
			t.Errorf("Check(%q): %v", p, err)
		}
	}
	for _, tc := range []struct {
		name, path string
		want       string
	}{
		{"not listed", other, "not an allowed PKCS#11 module (allowed: " + allowed},
		{"listed but writable", writable, "group or other"},
		{"relative", "liballowed.so", "not an absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.Check(tc.path, "SIGNET_PKCS11_MODULES")
			if !errors.Is(err, ErrModuleRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check(%q) = %v, want ErrModuleRefused saying %q", tc.path, err, tc.want)
			}
			if tc.name == "not listed" && !strings.Contains(err.Error(), "SIGNET_PKCS11_MODULES") {
				t.Errorf("the message does not say how to allow it: %v", err)
			}
		})
	}
	if _, err := ParseModuleList("lib/softhsm2.so"); !errors.Is(err, ErrModuleRefused) {
		t.Errorf("a relative allow-list entry: %v", err)
	}
	var none ModuleAllowList
	if err := none.Check(allowed, "X"); !errors.Is(err, ErrModuleRefused) || !strings.Contains(err.Error(), "allowed: none") {
		t.Errorf("an empty list: %v", err)
	}
}

// TestDefaultModules: the default allow-list is the well-known modules
// present here, and only those.
func TestDefaultModules(t *testing.T) {
	for _, p := range DefaultModules().Paths() {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s is listed but absent: %v", p, err)
		}
	}
	for _, p := range WellKnownModules {
		if _, err := os.Stat(p); err == nil {
			if err := DefaultModules().Check(p, "X"); err != nil && !strings.Contains(err.Error(), "group or other") {
				t.Errorf("%s is present but not allowed: %v", p, err)
			}
		}
	}
}
