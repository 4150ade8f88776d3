//go:build pkcs11

package signercmd_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/keys/pkcs11"
	"github.com/signet-trust/signet/internal/keys/pkcs11/pkcs11test"
	"github.com/signet-trust/signet/internal/signer/signerapi"
	"github.com/signet-trust/signet/internal/signercmd"
)

// serve runs signet-signer in process until the returned stop is called;
// it waits for "listening on".
func serve(t *testing.T, args []string, env map[string]string) (stop func() int, stdout *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stdout = &syncBuffer{}
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- signercmd.Main(ctx, args, envMap(env), stdout, &stderr) }()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stdout.String(), "listening on") {
		select {
		case code := <-done:
			cancel()
			t.Fatalf("signer exited %d\n%s", code, &stderr)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("signer did not start\n%s", &stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var code int
	stopped := false
	stop = func() int {
		if !stopped {
			stopped = true
			cancel()
			code = <-done
		}
		return code
	}
	t.Cleanup(func() { stop() })
	return stop, stdout
}

// TestServePKCS11: signet-signer --pkcs11 creates keys inside a SoftHSM2
// token, signs with them over mutual TLS through signerapi's client, and
// still does after a restart; a missing token, a missing PIN or a wrong
// one stop the start with an error that says which.
func TestServePKCS11(t *testing.T) {
	h := pkcs11test.New(t)
	h.Setenv(t)
	tok := h.InitToken(t, "signet-signer")
	uri := pkcs11.URI{ModulePath: h.Module, Token: tok.Label}.String()

	dir := t.TempDir()
	ca, srvCert, srvKey, cliCert, cliKey := pki(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args := []string{"--listen", addr, "--data-dir", filepath.Join(dir, "data"),
		"--tls-cert", srvCert, "--tls-key", srvKey, "--client-ca", ca, "--pkcs11", uri}
	env := map[string]string{signercmd.PINEnv: tok.PIN} // no passphrase: new keys go to the token

	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no PIN", args, nil, signercmd.PINEnv},
		{"wrong PIN", args, map[string]string{signercmd.PINEnv: "0000"}, "PIN incorrect"},
		{"token missing", append(append([]string{}, args...), "--pkcs11", pkcs11.URI{ModulePath: h.Module, Token: "absent"}.String()), env,
			`token "absent" is not present in ` + h.Module + `; present: "signet-signer"`},
		{"module missing", append(append([]string{}, args...), "--pkcs11", "pkcs11:token=signet-signer?module-path=/nonexistent/lib.so"), env,
			"/nonexistent/lib.so"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr syncBuffer
			if code := signercmd.Main(t.Context(), tt.args, envMap(tt.env), &syncBuffer{}, &stderr); code != 1 ||
				!strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, want 1 saying %q:\n%s", code, tt.want, &stderr)
			}
			if strings.Contains(stderr.String(), tok.PIN) {
				t.Fatalf("the error shows the PIN:\n%s", &stderr)
			}
		})
	}
	var stderr syncBuffer
	if code := signercmd.Main(t.Context(), append(append([]string{}, args...), "--pkcs11", pkcs11.URI{ModulePath: h.Module, Token: tok.Label, Object: "k"}.String()), envMap(env), &syncBuffer{}, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "not a key") {
		t.Fatalf("a URI naming a key: exit %d\n%s", code, &stderr)
	}
	var stderr2 syncBuffer
	if code := signercmd.Main(t.Context(), append(append([]string{}, args...), "--pkcs11", pkcs11.URI{ModulePath: "softhsm/libsofthsm2.so", Token: tok.Label}.String()), envMap(env), &syncBuffer{}, &stderr2); code != 2 ||
		!strings.Contains(stderr2.String(), "not an absolute path") {
		t.Fatalf("a relative module path: exit %d\n%s", code, &stderr2)
	}
	// A module file others may write is not loaded: whoever can replace
	// it would run code inside the signer, beside every key.
	body, err := os.ReadFile(h.Module)
	if err != nil {
		t.Fatal(err)
	}
	writable := filepath.Join(dir, "libwritable.so")
	if err := os.WriteFile(writable, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(writable, 0o666); err != nil {
		t.Fatal(err)
	}
	var stderr3 syncBuffer
	if code := signercmd.Main(t.Context(), append(append([]string{}, args...), "--pkcs11", pkcs11.URI{ModulePath: writable, Token: tok.Label}.String()), envMap(env), &syncBuffer{}, &stderr3); code != 1 ||
		!strings.Contains(stderr3.String(), writable+" may be written by group or other") {
		t.Fatalf("a writable module: exit %d\n%s", code, &stderr3)
	}
	if maps, err := os.ReadFile("/proc/self/maps"); err == nil && strings.Contains(string(maps), writable) {
		t.Fatal("the writable module was mapped into the process")
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Fatal("a refused start created the data directory")
	}

	stop, stdout := serve(t, args, env)
	if !strings.Contains(stdout.String(), "new keys in PKCS#11 pkcs11:token=signet-signer") {
		t.Errorf("start message: %s", stdout)
	}
	tlsCfg, err := signerapi.ClientTLSConfig(cliCert, cliKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	client := func() *signerapi.Client {
		c, err := signerapi.NewClient("https://"+addr, tlsCfg, signerapi.ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	signVerify := func(c *signerapi.Client, pub *keys.PublicKey) {
		t.Helper()
		s, err := c.Signer(t.Context(), "example.com/app", pub.ID())
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte(`{"signed":{"_type":"Timestamp"}}`)
		method, sig, err := keys.Sign(s, msg)
		if err != nil {
			t.Fatalf("sign over mutual TLS: %v", err)
		}
		if err := pub.Verify(method, msg, sig); err != nil {
			t.Fatalf("verify: %v", err)
		}
	}
	c := client()
	pub, err := c.Create(t.Context(), "example.com/app", "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	signVerify(c, pub)
	if list, err := c.Keys(t.Context(), "example.com/app", "timestamp"); err != nil || len(list) != 1 || list[0].ID() != pub.ID() {
		t.Fatalf("Keys = %v, %v", list, err)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// Restart: the key is found in the token again.
	serve(t, args, env)
	c2 := client()
	signVerify(c2, pub)
	if list, err := c2.Keys(t.Context(), "example.com/app", "timestamp"); err != nil || len(list) != 1 || list[0].ID() != pub.ID() {
		t.Fatalf("Keys after restart = %v, %v", list, err)
	}
}
