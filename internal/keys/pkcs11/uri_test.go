package pkcs11

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	u, err := ParseURI("pkcs11:token=signet;object=root-example.com%2Fapp;id=%01%ff;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin")
	if err != nil {
		t.Fatal(err)
	}
	want := URI{ModulePath: "/usr/lib/softhsm/libsofthsm2.so", Token: "signet", Object: "root-example.com/app", ID: []byte{1, 0xff}, PINSource: "/run/pin"}
	if u.ModulePath != want.ModulePath || u.Token != want.Token || u.Object != want.Object || !bytes.Equal(u.ID, want.ID) || u.PINSource != want.PINSource {
		t.Fatalf("ParseURI = %+v, want %+v", u, want)
	}
	// String round-trips.
	again, err := ParseURI(u.String())
	if err != nil {
		t.Fatalf("ParseURI(%q): %v", u.String(), err)
	}
	if again.String() != u.String() {
		t.Errorf("round trip: %q != %q", again.String(), u.String())
	}
	if got := u.String(); got != "pkcs11:token=signet;object=root-example.com%2Fapp;id=%01%FF?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin" {
		t.Errorf("String = %q", got)
	}
	// A liberal reader: "/" unescaped in a label, serial instead of label.
	u, err = ParseURI("pkcs11:serial=4bd274f1;object=root-a/b;manufacturer=SoftHSM%20project")
	if err != nil || u.Serial != "4bd274f1" || u.Object != "root-a/b" {
		t.Fatalf("ParseURI = %+v, %v", u, err)
	}
}

func TestParseURIErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"token=signet", "does not start"},
		{"pkcs11:token=a;serial=b", "not both"},
		{"pkcs11:label=a", "unknown path attribute"},
		{"pkcs11:token", "no value"},
		{"pkcs11:token=a;token=b", "twice"},
		{"pkcs11:object=%zz", "invalid URL escape"},
		{"pkcs11:token=a?module=/x", "unknown query attribute"},
		{"pkcs11:token=a?pin-value=1234", "pin-value"},
	} {
		_, err := ParseURI(tc.in)
		if !errors.Is(err, ErrInvalidURI) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURI(%q) = %v, want ErrInvalidURI mentioning %q", tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "1234") {
			t.Errorf("ParseURI(%q): the error shows the PIN: %v", tc.in, err)
		}
	}
	if _, err := ParseURI("token=a?pin-value=1234"); err == nil || strings.Contains(err.Error(), "1234") {
		t.Errorf("a malformed URI with a pin-value: %v", err)
	}
}

func FuzzParseURI(f *testing.F) {
	f.Add("pkcs11:token=signet;object=root%2Fx;id=%01?module-path=/usr/lib/x.so&pin-source=file:/p")
	f.Add("pkcs11:serial=1;object=a/b")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		again, err := ParseURI(u.String())
		if err != nil {
			t.Fatalf("ParseURI(String()) of %q: %v", u.String(), err)
		}
		if again.String() != u.String() {
			t.Fatalf("not stable: %q then %q", u.String(), again.String())
		}
	})
}
