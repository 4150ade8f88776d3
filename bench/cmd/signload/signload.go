package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/signet-trust/signet/bench/internal/result"
)

// Main runs the load and returns the exit code: 1 when the run could not
// happen or any request failed.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("signload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.base, "url", "", "signer base URL, e.g. https://127.0.0.1:4444")
	fs.StringVar(&o.ca, "ca", "", "PEM file of the CA of the signer's certificate")
	fs.StringVar(&o.cert, "cert", "", "client certificate (PEM) from the signer's --client-ca")
	fs.StringVar(&o.key, "key", "", "private key (PEM) of -cert")
	fs.StringVar(&o.alg, "alg", "ecdsa", "key algorithm: ecdsa or ed25519")
	fs.IntVar(&o.conns, "c", 8, "sign requests in flight (workers)")
	fs.DurationVar(&o.dur, "d", 10*time.Second, "measured duration (at most 10m)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound on each request")
	fs.StringVar(&o.gun, "gun", "", "GUN the key is created for (default example.com/signload/<unix nanos>)")
	fs.StringVar(&o.label, "label", "", "name of the configuration under test, copied into the output")
	fs.IntVar(&o.rep, "rep", 0, "repetition number, copied into the output")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rec, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "signload:", err)
		return 1
	}
	if err := rec.Write(stdout); err != nil {
		fmt.Fprintln(stderr, "signload:", err)
		return 1
	}
	if rec.Errors > 0 {
		fmt.Fprintf(stderr, "signload: %d failed signatures; first: %s\n", rec.Errors, rec.FirstErr)
		return 1
	}
	return 0
}

type options struct {
	base, ca, cert, key, alg, gun, label string
	conns, rep                           int
	dur, warmup, timeout                 time.Duration
}

// The signer API's messages (internal/signer/signerapi).
type (
	createKeyRequest struct {
		GUN       string `json:"gun"`
		Role      string `json:"role"`
		Algorithm string `json:"algorithm"`
	}
	keyInfo struct {
		ID        string `json:"id"`
		Algorithm string `json:"algorithm"`
		Public    []byte `json:"public"`
	}
	signRequest struct {
		GUN     string `json:"gun"`
		Hash    string `json:"hash,omitempty"`
		Digest  []byte `json:"digest,omitempty"`
		Message []byte `json:"message,omitempty"`
	}
	signResponse struct {
		Signature []byte `json:"signature"`
	}
)

type client struct {
	base string
	hc   *http.Client
}

func newClient(o options) (*client, error) {
	pair, err := tls.LoadX509KeyPair(o.cert, o.key)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	pem, err := os.ReadFile(o.ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", o.ca)
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}, RootCAs: pool},
		ForceAttemptHTTP2: true,
	}
	return &client{base: strings.TrimRight(o.base, "/"), hc: &http.Client{Transport: tr, Timeout: o.timeout}}, nil
}

func (c *client) call(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}

// verifier checks one signature over msg (ecdsa: over its SHA-256 digest).
type verifier func(msg, sig []byte) bool

func newVerifier(info keyInfo) (verifier, error) {
	switch info.Algorithm {
	case "ecdsa":
		pk, err := x509.ParsePKIXPublicKey(info.Public)
		if err != nil {
			return nil, err
		}
		ec, ok := pk.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("ecdsa key is a %T", pk)
		}
		return func(msg, sig []byte) bool {
			d := sha256.Sum256(msg)
			return ecdsa.VerifyASN1(ec, d[:], sig)
		}, nil
	case "ed25519":
		if len(info.Public) != ed25519.PublicKeySize {
			return nil, errors.New("ed25519 public key of the wrong size")
		}
		pub := ed25519.PublicKey(info.Public)
		return func(msg, sig []byte) bool { return ed25519.Verify(pub, msg, sig) }, nil
	}
	return nil, fmt.Errorf("algorithm %q", info.Algorithm)
}

type workerLog struct {
	lat      []time.Duration
	errors   int64
	firstErr error
}

func run(ctx context.Context, o options) (result.Record, error) {
	rec := result.Record{Kind: result.KindSign, Target: o.label, Workload: o.alg, Rep: o.rep, Conns: o.conns, DurationS: o.dur.Seconds()}
	if o.base == "" || o.ca == "" || o.cert == "" || o.key == "" || o.conns < 1 || o.dur <= 0 || o.dur > 10*time.Minute || o.warmup < 0 {
		return rec, errors.New("need -url, -ca, -cert, -key, -c ≥ 1, 0 < -d ≤ 10m")
	}
	if o.gun == "" {
		o.gun = fmt.Sprintf("example.com/signload/%d", time.Now().UnixNano())
	}
	c, err := newClient(o)
	if err != nil {
		return rec, err
	}
	defer c.hc.CloseIdleConnections()
	var info keyInfo
	if err := c.call(ctx, "/v1/keys", createKeyRequest{GUN: o.gun, Role: "timestamp", Algorithm: o.alg}, &info); err != nil {
		return rec, fmt.Errorf("create key: %w", err)
	}
	verify, err := newVerifier(info)
	if err != nil {
		return rec, err
	}
	path := "/v1/keys/" + info.ID + "/sign"

	start := time.Now()
	measureFrom, measureTo := start.Add(o.warmup), start.Add(o.warmup+o.dur)
	runCtx, cancel := context.WithDeadline(ctx, measureTo)
	defer cancel()
	logs := make([]workerLog, o.conns)
	var wg sync.WaitGroup
	for i := range logs {
		wg.Go(func() {
			l := &logs[i]
			msg := make([]byte, 512)
			for runCtx.Err() == nil {
				_, _ = rand.Read(msg)
				req := signRequest{GUN: o.gun}
				if o.alg == "ecdsa" {
					d := sha256.Sum256(msg)
					req.Hash, req.Digest = "SHA-256", d[:]
				} else {
					req.Message = msg
				}
				t0 := time.Now()
				var resp signResponse
				err := c.call(runCtx, path, req, &resp)
				t1 := time.Now()
				if runCtx.Err() != nil && t1.After(measureTo) {
					return // cut off by the deadline: not counted
				}
				if err == nil && !verify(msg, resp.Signature) {
					err = errors.New("signature does not verify")
				}
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					l.errors++
					if l.firstErr == nil {
						l.firstErr = err
					}
					continue
				}
				l.lat = append(l.lat, t1.Sub(t0))
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return rec, err
	}
	var lat []time.Duration
	for _, l := range logs {
		lat = append(lat, l.lat...)
		rec.Errors += l.errors
		if rec.FirstErr == "" && l.firstErr != nil {
			rec.FirstErr = l.firstErr.Error()
		}
	}
	rec.Requests = int64(len(lat))
	rec.PerSecond = float64(len(lat)) / o.dur.Seconds()
	rec.P50Ms, rec.P99Ms = result.Latencies(lat)
	rec.Completed = true
	return rec, nil
}
