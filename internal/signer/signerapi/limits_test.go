package signerapi_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/signer"
	"github.com/signet-trust/signet/internal/signer/signerapi"
)

func post(t *testing.T, hc *http.Client, url string, body io.Reader) (int, signerapi.ErrorBody) {
	t.Helper()
	resp, err := hc.Post(url, "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb signerapi.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	return resp.StatusCode, eb
}

// TestInvalidRequestsAre400: what the custody core refuses as malformed is
// the client's mistake (400 INVALID, with the reason), not the signer's
// failure (500).
func TestInvalidRequestsAre400(t *testing.T) {
	svc := newService(t)
	e := startSigner(t, svc, nil, signerapi.ClientOptions{})
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: e.clientTLS}}
	gun := uniqueGUN(t)
	ec, err := e.client.Create(t.Context(), gun, "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	ed, err := signerapi.NewClient(e.url, e.clientTLS, signerapi.ClientOptions{Algorithm: keys.TypeED25519})
	if err != nil {
		t.Fatal(err)
	}
	defer ed.Close()
	edKey, err := ed.Create(t.Context(), gun, "snapshot")
	if err != nil {
		t.Fatal(err)
	}
	before, err := svc.ListKeys(t.Context(), custody.Filter{IncludeRetired: true})
	if err != nil {
		t.Fatal(err)
	}
	digest := base64.StdEncoding.EncodeToString(make([]byte, 32))
	signBody := `{"gun":"` + gun + `","hash":"SHA-256","digest":"` + digest + `"}`
	for _, c := range []struct{ method, name, path, body, want string }{
		{"POST", "an unknown algorithm", "/v1/keys", `{"gun":"g","role":"timestamp","algorithm":"rsa9"}`, `algorithm "rsa9" not supported`},
		{"POST", "a role without online keys", "/v1/keys", `{"gun":"g","role":"root","algorithm":"ecdsa"}`, `role "root" has no online key`},
		{"POST", "a key ID that is not hex, to sign", "/v1/keys/zz/sign", signBody, `key ID "zz" is not 64 lowercase hexadecimal digits`},
		{"POST", "an upper-case key ID, to sign", "/v1/keys/" + strings.ToUpper(ec.ID()) + "/sign", signBody, "not 64 lowercase hexadecimal"},
		{"POST", "a key ID with a control character, to rotate", "/v1/keys/%01" + ec.ID()[1:] + "/rotate", "", `key ID "\x01`},
		{"POST", "a long key ID, to retire", "/v1/keys/" + ec.ID() + ec.ID() + "/retire", "", "not 64 lowercase hexadecimal"},
		{"DELETE", "a short key ID", "/v1/keys/" + ec.ID()[:63], "", "not 64 lowercase hexadecimal"},
		{"GET", "a key ID with a dot", "/v1/keys/" + ec.ID()[:63] + ".", "", "not 64 lowercase hexadecimal"},
		{"GET", "a listing by a GUN with a control character", "/v1/keys?gun=g%01", "", "gun holds a control character"},
		{"GET", "a listing by an unknown purpose", "/v1/keys?purpose=root", "", `purpose "root"`},
		{"GET", "a listing by a malformed owner", "/v1/keys?owner=user:alice", "", `owner "user:alice"`},
		{"GET", "a listing with an unknown parameter", "/v1/keys?state=active", "", `unknown query parameter "state"`},
		{"GET", "a listing with a parameter given twice", "/v1/keys?gun=a&gun=b", "", "gun is given 2 times"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, e.url+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb signerapi.ErrorBody
			_ = json.NewDecoder(resp.Body).Decode(&eb)
			if resp.StatusCode != http.StatusBadRequest || eb.Error.Code != signerapi.CodeInvalid || !strings.Contains(eb.Error.Message, c.want) {
				t.Fatalf("%d %+v, want 400 INVALID saying %q", resp.StatusCode, eb, c.want)
			}
		})
	}
	for _, c := range []struct{ name, path, body string }{
		{"a GUN with a control character", "/v1/keys", `{"gun":"g\u0001","role":"timestamp","algorithm":"ecdsa"}`},
		{"a GUN longer than 255 bytes", "/v1/keys", `{"gun":"` + strings.Repeat("g", 256) + `","role":"timestamp","algorithm":"ecdsa"}`},
		{"a role with DEL", "/v1/keys", `{"gun":"g","role":"time\u007fstamp","algorithm":"ecdsa"}`},
		{"an ecdsa key asked to sign a whole message", "/v1/keys/" + ec.ID() + "/sign", `{"gun":"` + gun + `","message":"` + digest + `"}`},
		{"an ed25519 key asked to sign a digest", "/v1/keys/" + edKey.ID() + "/sign", `{"gun":"` + gun + `","hash":"SHA-256","digest":"` + digest + `"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, eb := post(t, hc, e.url+c.path, strings.NewReader(c.body))
			if code != http.StatusBadRequest || eb.Error.Code != signerapi.CodeInvalid || strings.Contains(eb.Error.Message, "signer's log") {
				t.Fatalf("%d %+v, want 400 INVALID with the reason", code, eb)
			}
		})
	}
	if list, err := e.client.Keys(t.Context(), "g\u0001", "timestamp"); err == nil && len(list) > 0 {
		t.Fatalf("a key was created for a refused GUN: %v", list)
	}
	after, err := svc.ListKeys(t.Context(), custody.Filter{IncludeRetired: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("refused requests changed the keys: %d before, %d after", len(before), len(after))
	}
	for i := range after {
		if after[i].Public.ID() != before[i].Public.ID() || !after[i].RetiredAt.Equal(before[i].RetiredAt) {
			t.Fatalf("refused requests changed key %s", before[i].Public.ID())
		}
	}
}

// blockingService holds every Sign until released, counting how many are
// in flight at once.
type blockingService struct {
	*signer.Service
	mu                sync.Mutex
	release           chan struct{}
	inFlight, maxSeen atomic.Int64
}

func (b *blockingService) gate() chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.release
}

func (b *blockingService) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.release = make(chan struct{})
	b.maxSeen.Store(0)
}

func (b *blockingService) Signer(ctx context.Context, gun, id string) (crypto.Signer, error) {
	s, err := b.Service.Signer(ctx, gun, id)
	if err != nil {
		return nil, err
	}
	return &blockingSigner{Signer: s, b: b, ctx: ctx}, nil
}

// blockingSigner is a key of blockingService: its Sign waits for the gate.
type blockingSigner struct {
	crypto.Signer
	b   *blockingService
	ctx context.Context
}

func (s *blockingSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	b := s.b
	n := b.inFlight.Add(1)
	for {
		m := b.maxSeen.Load()
		if n <= m || b.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	defer b.inFlight.Add(-1)
	select {
	case <-b.gate():
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
	return s.Signer.Sign(rand, digest, opts)
}

// TestBodiesInFlightAreBounded: request bodies of unknown length each
// reserve the sign limit, so at most four are read at once however many
// arrive; small bodies of declared length are not held back.
func TestBodiesInFlightAreBounded(t *testing.T) {
	svc := &blockingService{Service: newService(t), release: make(chan struct{})}
	e := startSigner(t, svc, nil, signerapi.ClientOptions{})
	gun := uniqueGUN(t)
	pub, err := e.client.Create(t.Context(), gun, "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("m"))
	body := `{"gun":"` + gun + `","hash":"SHA-256","digest":"` + base64.StdEncoding.EncodeToString(sum[:]) + `"}`
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: e.clientTLS}}
	url := e.url + "/v1/keys/" + pub.ID() + "/sign"

	round := func(n int64, newBody func() io.Reader) {
		t.Helper()
		svc.reset()
		var wg sync.WaitGroup
		codes := make(chan int, 8)
		for range 8 {
			wg.Go(func() {
				code, _ := post(t, hc, url, newBody())
				codes <- code
			})
		}
		deadline := time.Now().Add(15 * time.Second)
		for svc.inFlight.Load() < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // room for any request the bound should hold back
		got := svc.maxSeen.Load()
		close(svc.gate())
		wg.Wait()
		close(codes)
		for c := range codes {
			if c != http.StatusOK {
				t.Errorf("a sign request answered %d", c)
			}
		}
		if got != n {
			t.Errorf("%d sign requests in flight at most, want %d", got, n)
		}
	}
	// Chunked bodies (no Content-Length): each reserves 16 MiB of 64.
	round(4, func() io.Reader { return io.MultiReader(strings.NewReader(body)) })
	// Declared small bodies all proceed together.
	round(8, func() io.Reader { return strings.NewReader(body) })
}
