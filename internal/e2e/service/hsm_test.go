//go:build pkcs11

package service

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/keys/pkcs11"
	"github.com/signet-trust/signet/internal/keys/pkcs11/pkcs11test"
	"github.com/signet-trust/signet/internal/oci"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/service/serviceapi"
	"github.com/signet-trust/signet/internal/signer/signerapi"
	"github.com/signet-trust/signet/internal/signercmd"
)

// TestProjectKeyInHSM: signet-server holds its keys through signet-signer,
// which makes them in a SoftHSM2 token; the project's delegation and
// cosign keys are made there, never leave it, and sign the requests (in
// DCT, and in DCT and cosign).
func TestProjectKeyInHSM(t *testing.T) {
	e2etest.Need(t, "docker-registry")
	h := pkcs11test.New(t)
	h.Setenv(t)
	tok := h.InitToken(t, "signet-signer")
	uri := pkcs11.URI{ModulePath: h.Module, Token: tok.Label}.String()
	signer := inproc.StartSigner(t, inproc.SignerOptions{Flags: []string{"--pkcs11", uri}, Env: map[string]string{signercmd.PINEnv: tok.PIN}})
	admin := randomToken(t)
	srv := inproc.StartServer(t, inproc.ServerOptions{Signer: signer, Env: map[string]string{"SIGNET_ADMIN_TOKEN": admin}})
	reg := e2etest.StartRegistry(t, "")
	ctx := context.Background()
	api := func(token string) *serviceapi.Client {
		return &serviceapi.Client{Server: srv.URL, HTTP: srv.Client, Token: token}
	}

	gun := reg.Host + "/hsm/app"
	p, err := api(admin).CreateProject(ctx, serviceapi.CreateProject{Name: "app", Repository: gun, Signer: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	// The key is the token's.
	cert, key := signer.CA.MustIssue(t, "hsm-test-client", x509.ExtKeyUsageClientAuth)
	tlsCfg, err := signerapi.ClientTLSConfig(cert, key, signer.CA.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := signerapi.NewClient(signer.URL, tlsCfg, signerapi.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := sc.Key(ctx, p.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if k.Token == "" || k.Owner != "project:app" || string(k.Purpose) != "delegation" || k.Role != "targets/ci" {
		t.Fatalf("the project's key as the signer holds it: %+v", k)
	}
	ownerDelegates(t, srv.URL, srv.Client, gun, "ci", p.PublicKey)
	u, err := api(admin).CreateUser(ctx, serviceapi.CreateUser{Name: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api(admin).CreatePolicy(ctx, "app", serviceapi.PolicySpec{Name: "auto", Approvals: serviceapi.Approvals{Approvers: []string{}}, Submitters: []string{"dev"}}); err != nil {
		t.Fatal(err)
	}
	digest := push(t, registry.Anonymous, reg.Host, "hsm/app", "v1")
	r, err := api(u.Token).Submit(ctx, serviceapi.Submit{Project: "app", Policy: "auto", Image: gun + ":v1"})
	if err != nil || r.Status != serviceapi.StatusSigned {
		t.Fatalf("submit = %+v, %v", r, err)
	}
	for _, role := range []string{"targets/ci", "targets/releases"} {
		if d := signedDigest(t, srv.URL, srv.Client, gun, role, "v1"); d != digest {
			t.Errorf("%s: %q, want %s", role, d, digest)
		}
	}

	// Both formats: the cosign key is the token's too.
	ck, err := sc.Key(ctx, p.CosignKeyID)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Token == "" || ck.Owner != "project:app" || string(ck.Purpose) != "cosign" {
		t.Fatalf("the project's cosign key as the signer holds it: %+v", ck)
	}
	if _, err := api(admin).CreatePolicy(ctx, "app", serviceapi.PolicySpec{Name: "both", Formats: []string{"dct", "cosign"},
		Approvals: serviceapi.Approvals{Approvers: []string{}}, Submitters: []string{"dev"}}); err != nil {
		t.Fatal(err)
	}
	digest = push(t, registry.Anonymous, reg.Host, "hsm/app", "v2")
	r, err = api(u.Token).Submit(ctx, serviceapi.Submit{Project: "app", Policy: "both", Image: gun + ":v2"})
	if err != nil || r.Status != serviceapi.StatusSigned || len(r.Cosign) != 2 {
		t.Fatalf("submit in both formats = %+v, %v", r, err)
	}
	if d := signedDigest(t, srv.URL, srv.Client, gun, "targets/ci", "v2"); d != digest {
		t.Errorf("targets/ci v2: %q, want %s", d, digest)
	}
	pub, err := keys.ParsePublicKeyPEM([]byte(p.CosignPublicKey))
	if err != nil {
		t.Fatal(err)
	}
	tg, err := oci.Resolve(ctx, (&registry.Client{}).Repository(registry.Reference{Registry: reg.Host, Repository: "hsm/app"}, "pull"), digest)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := oci.Verify(ctx, tg, pub.CryptoKey(), oci.Options{Now: time.Now()}); err != nil || len(rep.Verified) != 2 {
		t.Errorf("the cosign signatures by the token's key: %v %+v", err, rep)
	}
}
