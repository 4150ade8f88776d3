package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/origin"
	"github.com/signet-trust/signet/internal/origin/origintest"
)

const (
	hostilePass  = "registry-password-s3cret"
	hostileToken = "bearer-token-t0k3n"
	hostileRefr  = "refresh-token-r3fr3sh"
)

var testManifest = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)

type staticKeychain Credentials

func (k staticKeychain) Credentials(context.Context, string) (Credentials, error) {
	return Credentials(k), nil
}

var password = staticKeychain{Username: "ci", Password: hostilePass}

// redirect answers with a redirect to target (the request's path kept).
func redirect(code int, target string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.Path, code)
	}
}

func challenge(header string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", header)
		w.WriteHeader(http.StatusUnauthorized)
	}
}

func serveManifest(mediaType string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", mediaType)
		_, _ = w.Write(body)
	}
}

// authed answers unauthenticated requests with a Basic (or the given)
// challenge and authenticated ones with next.
func authed(header string, next http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			challenge(header)(w, r)
			return
		}
		next.ServeHTTP(w, r)
	}
}

func tokenService(token string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token":"` + token + `"}`))
	}
}

func resolveVia(t *testing.T, n *origintest.Net, kc Keychain, ref string) (Descriptor, error) {
	t.Helper()
	r, err := ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return (&Client{Transport: n.Transport(), Keychain: kc}).Resolve(t.Context(), r)
}

// TestHostileRegistry: a registry (and token service) that tries to move
// the credentials it is given somewhere else, or to have signet read a
// manifest over plain http. Each case checks the answer and that the
// credential never reached the other origin.
func TestHostileRegistry(t *testing.T) {
	t.Run("credentials do not follow a redirect to another port", func(t *testing.T) {
		n := origintest.New(t)
		reg := n.Serve("https://registry.test", authed(`Basic realm="r"`, redirect(http.StatusFound, "https://registry.test:8443")))
		other := n.Serve("https://registry.test:8443", challenge(`Basic realm="r"`))
		_, err := resolveVia(t, n, password, "registry.test/app:v1")
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Resolve: %v, want ErrUnauthorized", err)
		}
		if !reg.Saw(hostilePass) {
			t.Fatal("the registry itself never got the password: the test proves nothing")
		}
		if other.Saw(hostilePass) || len(other.Authorizations()) > 0 {
			t.Fatalf("the other port got credentials: %v", other.Authorizations())
		}
	})
	t.Run("credentials do not follow a redirect to another host", func(t *testing.T) {
		n := origintest.New(t)
		n.Serve("https://registry.test", authed(`Basic realm="r"`, redirect(http.StatusTemporaryRedirect, "https://evil.test")))
		evil := n.Serve("https://evil.test", serveManifest("application/vnd.oci.image.manifest.v1+json", testManifest))
		if _, err := resolveVia(t, n, password, "registry.test/app:v1"); err != nil {
			t.Fatalf("Resolve through a redirect: %v", err) // a CDN may serve it; the bytes are hashed
		}
		if len(evil.Requests()) != 1 || len(evil.Authorizations()) > 0 {
			t.Fatalf("the other host got %d requests with credentials %v", len(evil.Requests()), evil.Authorizations())
		}
	})
	t.Run("a challenge from the host a redirect led to is not answered", func(t *testing.T) {
		n := origintest.New(t)
		n.Serve("https://registry.test", redirect(http.StatusFound, "https://evil.test"))
		evil := n.Serve("https://evil.test", challenge(`Basic realm="give me the password"`))
		if _, err := resolveVia(t, n, password, "registry.test/app:v1"); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "redirected") {
			t.Fatalf("Resolve: %v, want ErrUnauthorized naming the redirect", err)
		}
		if len(evil.Requests()) != 1 || evil.Saw(hostilePass) {
			t.Fatalf("the host the registry redirected to got %d requests (password: %v)", len(evil.Requests()), evil.Saw(hostilePass))
		}
	})
	t.Run("https to http downgrade is refused", func(t *testing.T) {
		n := origintest.New(t)
		n.Serve("https://registry.test", authed(`Basic realm="r"`, redirect(http.StatusFound, "http://registry.test")))
		plain := n.Serve("http://registry.test", serveManifest("application/vnd.oci.image.manifest.v1+json", testManifest))
		if _, err := resolveVia(t, n, password, "registry.test/app:v1"); !errors.Is(err, origin.ErrDowngrade) {
			t.Fatalf("Resolve: %v, want ErrDowngrade", err)
		}
		if len(plain.Requests()) != 0 {
			t.Fatalf("the plain-http listener got %v", plain.Requests())
		}
	})
	t.Run("an anonymous manifest read over plain http is refused", func(t *testing.T) {
		n := origintest.New(t)
		n.Serve("https://registry.test", redirect(http.StatusMovedPermanently, "http://mirror.test"))
		plain := n.Serve("http://mirror.test", serveManifest("application/vnd.oci.image.manifest.v1+json", testManifest))
		if _, err := resolveVia(t, n, Anonymous, "registry.test/app:v1"); !errors.Is(err, origin.ErrDowngrade) {
			t.Fatalf("Resolve: %v, want ErrDowngrade", err)
		}
		if len(plain.Requests()) != 0 {
			t.Fatalf("the plain-http listener got %v", plain.Requests())
		}
	})
	t.Run("a bearer token goes only to the origin that challenged", func(t *testing.T) {
		n := origintest.New(t)
		auth := n.Serve("https://auth.test", tokenService(hostileToken))
		reg := n.Serve("https://registry.test", authed(`Bearer realm="https://auth.test/token",service="reg"`, redirect(http.StatusFound, "https://registry.test:5000")))
		other := n.Serve("https://registry.test:5000", challenge(`Bearer realm="https://auth.test/token"`))
		if _, err := resolveVia(t, n, password, "registry.test/app:v1"); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Resolve: %v", err)
		}
		if !auth.Saw(hostilePass) || !reg.Saw(hostileToken) {
			t.Fatal("the token flow did not run: the test proves nothing")
		}
		if other.Saw(hostileToken) || other.Saw(hostilePass) {
			t.Fatalf("the other port got %v", other.Authorizations())
		}
	})
	t.Run("a token realm over plain http is refused", func(t *testing.T) {
		n := origintest.New(t)
		plain := n.Serve("http://auth.test", tokenService(hostileToken))
		n.Serve("https://registry.test", challenge(`Bearer realm="http://auth.test/token",service="reg"`))
		if _, err := resolveVia(t, n, password, "registry.test/app:v1"); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "not https") {
			t.Fatalf("Resolve: %v", err)
		}
		if len(plain.Requests()) != 0 {
			t.Fatalf("the plain-http realm got %v", plain.Requests())
		}
	})
	t.Run("a token realm redirecting to plain http is refused", func(t *testing.T) {
		n := origintest.New(t)
		n.Serve("https://auth.test", redirect(http.StatusFound, "http://auth.test"))
		plain := n.Serve("http://auth.test", tokenService(hostileToken))
		n.Serve("https://registry.test", challenge(`Bearer realm="https://auth.test/token",service="reg"`))
		if _, err := resolveVia(t, n, password, "registry.test/app:v1"); !errors.Is(err, origin.ErrDowngrade) {
			t.Fatalf("Resolve: %v, want ErrDowngrade", err)
		}
		if len(plain.Requests()) != 0 {
			t.Fatalf("the plain-http realm got %v", plain.Requests())
		}
	})
	t.Run("a loopback token realm redirecting to a plain-http host is refused", func(t *testing.T) {
		n := origintest.New(t)
		n.Serve("http://127.0.0.1:5001", redirect(http.StatusFound, "http://auth.test"))
		plain := n.Serve("http://auth.test", tokenService(hostileToken))
		n.Serve("https://registry.test", challenge(`Bearer realm="http://127.0.0.1:5001/token",service="reg"`))
		if _, err := resolveVia(t, n, password, "registry.test/app:v1"); !errors.Is(err, origin.ErrInsecure) {
			t.Fatalf("Resolve: %v, want ErrInsecure", err)
		}
		if len(plain.Requests()) != 0 {
			t.Fatalf("the plain-http host got %v", plain.Requests())
		}
	})
	t.Run("a token realm redirecting to another host gets no password", func(t *testing.T) {
		n := origintest.New(t)
		auth := n.Serve("https://auth.test", redirect(http.StatusFound, "https://evil.test"))
		evil := n.Serve("https://evil.test", tokenService(hostileToken))
		n.Serve("https://registry.test", authed(`Bearer realm="https://auth.test/token",service="reg"`, serveManifest("application/vnd.oci.image.manifest.v1+json", testManifest)))
		if _, err := resolveVia(t, n, password, "registry.test/app:v1"); err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if !auth.Saw(hostilePass) {
			t.Fatal("the realm never got the password: the test proves nothing")
		}
		if len(evil.Requests()) != 1 || evil.Saw(hostilePass) {
			t.Fatalf("the host the realm redirected to got %v", evil.Requests())
		}
	})
	t.Run("an error body is quoted", func(t *testing.T) {
		n := origintest.New(t)
		n.Serve("https://registry.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("oops\x1b]0;pwned\x07\n* fatal: forged"))
		}))
		_, err := resolveVia(t, n, Anonymous, "registry.test/app:v1")
		if err == nil || strings.ContainsAny(err.Error(), "\x1b\x07\n") || !strings.Contains(err.Error(), `\x1b]0;pwned`) {
			t.Fatalf("Resolve: %q", err)
		}
	})
	for _, target := range []string{"https://evil.test", "https://auth.test:8443"} {
		t.Run("a refresh token is not redirected to "+target, func(t *testing.T) {
			n := origintest.New(t)
			auth := n.Serve("https://auth.test", redirect(http.StatusTemporaryRedirect, target))
			evil := n.Serve(target, tokenService(hostileToken))
			n.Serve("https://registry.test", challenge(`Bearer realm="https://auth.test/token",service="reg"`))
			_, err := resolveVia(t, n, staticKeychain{IdentityToken: hostileRefr}, "registry.test/app:v1")
			if !errors.Is(err, origin.ErrCrossOrigin) {
				t.Fatalf("Resolve: %v, want ErrCrossOrigin", err)
			}
			if !auth.Saw(hostileRefr) {
				t.Fatal("the realm never got the refresh token: the test proves nothing")
			}
			if len(evil.Requests()) != 0 {
				t.Fatalf("the redirect target got %v", evil.Requests())
			}
		})
	}
}

// TestHostileTrustServer: the trust server's transport answers only its
// own challenges, and only it receives the credentials.
func TestHostileTrustServer(t *testing.T) {
	client := func(n *origintest.Net, server string, kc Keychain) *http.Client {
		return &http.Client{
			Transport:     &AuthTransport{Base: n.Transport(), Keychain: kc, Server: server, Registry: "registry.test", Repository: "registry.test/app", Actions: "pull"},
			CheckRedirect: origin.Policy{}.CheckRedirect, // as client.Remote sets it
		}
	}
	get := func(hc *http.Client, u string) (*http.Response, error) {
		resp, err := hc.Get(u)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	t.Run("a plain-http trust server that is not loopback gets no password", func(t *testing.T) {
		n := origintest.New(t)
		trust := n.Serve("http://trust.test", challenge(`Basic realm="notary"`))
		_, err := get(client(n, "http://trust.test", password), "http://trust.test/v2/registry.test/app/_trust/tuf/root.json")
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "plain http") {
			t.Fatalf("GET: %v", err)
		}
		if trust.Saw(hostilePass) || len(trust.Requests()) != 1 {
			t.Fatalf("the trust server got %v", trust.Requests())
		}
	})
	t.Run("nor a token fetched with it", func(t *testing.T) {
		n := origintest.New(t)
		auth := n.Serve("https://auth.test", tokenService(hostileToken))
		trust := n.Serve("http://trust.test", challenge(`Bearer realm="https://auth.test/token",service="notary"`))
		if _, err := get(client(n, "http://trust.test", password), "http://trust.test/v2/registry.test/app/_trust/tuf/root.json"); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("GET: %v", err)
		}
		if len(auth.Requests()) != 0 || trust.Saw(hostileToken) {
			t.Fatalf("the realm got %v, the trust server %v", auth.Requests(), trust.Authorizations())
		}
	})
	t.Run("a loopback plain-http trust server is answered", func(t *testing.T) {
		n := origintest.New(t)
		trust := n.Serve("http://127.0.0.1:4443", authed(`Basic realm="notary"`, serveManifest("application/json", []byte("{}"))))
		resp, err := get(client(n, "http://127.0.0.1:4443", password), "http://127.0.0.1:4443/v2/x/_trust/tuf/root.json")
		if err != nil || resp.StatusCode != http.StatusOK || !trust.Saw(hostilePass) {
			t.Fatalf("GET: %v %v", resp, err)
		}
	})
	for _, target := range []string{"https://evil.test", "https://trust.test:8443"} {
		t.Run("after a 401, a redirect to "+target+" gets no credentials and its challenge no answer", func(t *testing.T) {
			n := origintest.New(t)
			trust := n.Serve("https://trust.test", authed(`Basic realm="notary"`, redirect(http.StatusFound, target)))
			evil := n.Serve(target, challenge(`Basic realm="notary"`))
			hc := client(n, "https://trust.test", password)
			resp, err := get(hc, "https://trust.test/v2/registry.test/app/_trust/tuf/root.json")
			if err != nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("GET: %v %v, want the redirect target's 401", resp, err)
			}
			if !trust.Saw(hostilePass) {
				t.Fatal("the trust server never got the password: the test proves nothing")
			}
			// A later request starts at the trust server again, with the
			// cached answer; the redirect target still gets nothing.
			_, _ = get(hc, "https://trust.test/v2/registry.test/app/_trust/tuf/targets.json")
			if evil.Saw(hostilePass) || len(evil.Authorizations()) > 0 || len(evil.Requests()) != 2 {
				t.Fatalf("the redirect target got %v", evil.Requests())
			}
		})
	}
	t.Run("after a 401, a redirect to plain http is refused", func(t *testing.T) {
		n := origintest.New(t)
		n.Serve("https://trust.test", authed(`Basic realm="notary"`, redirect(http.StatusFound, "http://evil.test")))
		plain := n.Serve("http://evil.test", challenge(`Basic realm="notary"`))
		if _, err := get(client(n, "https://trust.test", password), "https://trust.test/v2/registry.test/app/_trust/tuf/root.json"); !errors.Is(err, origin.ErrDowngrade) {
			t.Fatalf("GET: %v, want ErrDowngrade", err)
		}
		if len(plain.Requests()) != 0 {
			t.Fatalf("the plain-http host got %v", plain.Requests())
		}
	})
	t.Run("a transport without its server's URL sends nothing", func(t *testing.T) {
		n := origintest.New(t)
		trust := n.Serve("https://trust.test", challenge(`Basic realm="notary"`))
		if _, err := get(client(n, "", password), "https://trust.test/"); err == nil {
			t.Fatal("no error")
		}
		if len(trust.Requests()) != 0 {
			t.Fatalf("the trust server got %v", trust.Requests())
		}
	})
}

// TestResolveRefusesWhatIsNotAManifest: a 200 answer is signed only when
// it is a manifest of a type asked for that parses as that type.
func TestResolveRefusesWhatIsNotAManifest(t *testing.T) {
	index := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1}]}`)
	dockerV2 := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:` + strings.Repeat("b", 64) + `","size":3},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:` + strings.Repeat("c", 64) + `","size":4}]}`)
	schema1 := []byte(`{"schemaVersion":1,"name":"app","tag":"v1","fsLayers":[{"blobSum":"sha256:` + strings.Repeat("d", 64) + `"}],"signatures":[]}`)
	for _, tc := range []struct {
		name, mediaType string
		body            []byte
		ok              bool
	}{
		{"an OCI image manifest", "application/vnd.oci.image.manifest.v1+json", testManifest, true},
		{"an OCI image index", "application/vnd.oci.image.index.v1+json", index, true},
		{"a Docker v2 manifest", "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8", dockerV2, true},
		{"a proxy's login page", "text/html; charset=utf-8", []byte("<html><body>Please log in</body></html>"), false},
		{"a login page with a manifest type", "application/vnd.oci.image.manifest.v1+json", []byte("<html><body>Please log in</body></html>"), false},
		{"no content type", "", testManifest, false},
		{"a schema1 manifest", "application/vnd.docker.distribution.manifest.v1+prettyjws", schema1, false},
		{"a schema1 manifest under a v2 type", "application/vnd.docker.distribution.manifest.v2+json", schema1, false},
		{"a body of another manifest type", "application/vnd.docker.distribution.manifest.v2+json", testManifest, false},
		{"an index served as a manifest", "application/vnd.oci.image.manifest.v1+json", []byte(strings.Replace(string(index), `"mediaType":"application/vnd.oci.image.index.v1+json",`, "", 1)), false},
		{"a manifest without config", "application/vnd.oci.image.manifest.v1+json", []byte(`{"schemaVersion":2,"layers":[]}`), false},
		{"a descriptor without digest", "application/vnd.oci.image.manifest.v1+json", []byte(`{"schemaVersion":2,"config":{"mediaType":"x","size":1},"layers":[]}`), false},
		{"an error document", "application/json", []byte(`{"errors":[{"code":"DENIED"}]}`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := origintest.New(t)
			n.Serve("https://registry.test", serveManifest(tc.mediaType, tc.body))
			d, err := resolveVia(t, n, Anonymous, "registry.test/app:v1")
			if tc.ok {
				sum := sha256.Sum256(tc.body)
				if err != nil || d.Digest != "sha256:"+hex.EncodeToString(sum[:]) {
					t.Fatalf("Resolve: %+v %v", d, err)
				}
				return
			}
			if !errors.Is(err, ErrNotManifest) {
				t.Fatalf("Resolve: %+v %v, want ErrNotManifest", d, err)
			}
		})
	}
}
