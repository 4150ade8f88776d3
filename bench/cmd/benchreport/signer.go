package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/signet-trust/signet/bench/internal/result"
)

// signerHeading starts the signer section; -only signer replaces the
// section from this heading to the next one, and a full report keeps an
// existing one when its run has no signer figures.
const signerHeading = "## Signer:"

// serviceHeading starts the signing service's section, written by its
// benchmark in the main module (internal/service, TestServiceBenchmark)
// and kept as it is by every report of this tool.
const serviceHeading = "## Signing service:"

// The audit log's and the web dashboard's sections, written by their
// benchmarks in the main module (internal/audit TestAuditBenchmark,
// internal/ui TestRenderBenchmark) and kept like the signing service's.
const (
	auditHeading     = "## Audit log:"
	dashboardHeading = "## Web dashboard:"
)

// The configurations bench/signer.sh labels its runs with.
const (
	sigSoftware = "software" // signet-signer, keys sealed in its database
	sigSoftHSM  = "softhsm"  // signet-signer -tags pkcs11 --pkcs11, keys in SoftHSM2
	pubEmbedded = "embedded" // signet-server holding its online keys
	pubRemote   = "remote"   // signet-server --signer, software keys
	pubRemoteHS = "remote-softhsm"
)

var signerConfigs = []struct{ label, what string }{
	{sigSoftware, "signet-signer, keys sealed in its database (held decrypted in memory after first use)"},
	{sigSoftHSM, "signet-signer built with `-tags pkcs11`, `--pkcs11` SoftHSM2 token (keys generated in the token, not extractable)"},
}

var publishConfigs = []struct{ label, what string }{
	{pubEmbedded, "signet-server, online keys in its own database (embedded custodian)"},
	{pubRemote, "signet-server `--signer`, keys in signet-signer (software)"},
	{pubRemoteHS, "signet-server `--signer`, keys in signet-signer with SoftHSM2"},
}

func hasKind(recs []result.Record, kind string) bool {
	return slices.ContainsFunc(recs, func(r result.Record) bool { return r.Kind == kind })
}

func renderSigner(w io.Writer, m meta, recs []result.Record) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\n%s signatures/s through signet-signer, publishes/s with a remote signer\n\n", signerHeading)
	p("Written by `BENCH_ONLY=signer bench/run.sh` (`bench/signer.sh`; also part of the default run).\n")
	p("Run: %s, commit %s, %s cores (%s); load average (1/5/15 min) %s. Everything on 127.0.0.1.\n\n",
		orNA(firstNonEmpty(m.signerDate, m.date)), orNA(firstNonEmpty(m.signerCommit, m.commit)), orNA(m.nproc), orNA(m.cpu), orNA(m.signerLoad))
	p("- **Signatures** (`bench/cmd/signload`): one key per run, created through `POST /v1/keys`; %s\n", orNA(m.signerConns))
	p("  workers each keep one `POST /v1/keys/{id}/sign` in flight over one HTTP/2 mutual-TLS connection\n")
	p("  (as signet-server's client), %s warm-up then %s measured, %s repetitions interleaved; every\n", orNA(m.signerWarmup), orNA(m.signerDuration), orNA(m.signerReps))
	p("  signature is verified by the load generator. ECDSA P-256 signs a SHA-256 digest; Ed25519 the\n")
	p("  512-byte message. SoftHSM2 %s creates ECDSA keys only.\n", orNA(m.softhsmVersion))
	p("- **Publishes** (`bench/cmd/publishload`, notary v0.7.0 client library, as in the Publish section):\n")
	p("  %s workers, %s publishes per repository, %s per run; the server signs a new timestamp on\n", orNA(m.pubWorkers), orNA(m.pubPerRepo), orNA(m.pubDuration))
	p("  every publish (and creates the timestamp key of every new repository) through its custodian.\n")
	p("- Load generator, signer and server share the machine's cores: compare the configurations, not\n")
	p("  the absolute figures with other machines.\n\n")

	if !hasKind(recs, result.KindSign) && !hasKind(recs, result.KindPublish) {
		p("Not measured in this run.\n")
		return
	}
	p("| signer | key | signatures/s (median) | p50 / p99 ms | errors (sum) | signatures/s per run |\n")
	p("|---|---|---:|---:|---:|---|\n")
	for _, c := range signerConfigs {
		for _, alg := range []string{"ecdsa", "ed25519"} {
			a, ok := aggregate(recs, result.KindSign, alg, c.label)
			if !ok {
				continue
			}
			p("| %s | %s | %s | %s | %s | %s |\n", c.label, alg, rate(a, ok), lat(a, ok), errs(a, ok), runs(a, ok))
		}
	}
	sw, okSW := aggregate(recs, result.KindSign, "ecdsa", sigSoftware)
	hs, okHS := aggregate(recs, result.KindSign, "ecdsa", sigSoftHSM)
	p("\nECDSA softhsm/software: %s.\n\n", ratio(hs, sw, okHS, okSW))
	for _, c := range signerConfigs {
		p("- %s: %s\n", c.label, c.what)
	}

	p("\n| server | publishes/s (median) | p50 / p99 ms per publish | errors (sum) | durability: verified / missing (sum) | publishes/s per run |\n")
	p("|---|---:|---:|---:|---:|---|\n")
	for _, c := range publishConfigs {
		a, ok := aggregate(recs, result.KindPublish, "init+publish", c.label)
		if !ok {
			p("| %s | %s | %s | %s | %s | %s |\n", c.label, na, na, na, na, na)
			continue
		}
		dur := fmt.Sprintf("%d / %d", a.verified, a.miss)
		if a.incomplete {
			dur += " (check incomplete)"
		}
		p("| %s | %.1f | %s | %d | %s | %s |\n", c.label, a.perSecond, lat(a, ok), a.errors, dur, runs(a, ok))
	}
	em, okE := aggregate(recs, result.KindPublish, "init+publish", pubEmbedded)
	re, okR := aggregate(recs, result.KindPublish, "init+publish", pubRemote)
	rh, okH := aggregate(recs, result.KindPublish, "init+publish", pubRemoteHS)
	p("\nremote/embedded publishes/s: %s; remote-softhsm/embedded: %s.\n\n", ratio(re, em, okR, okE), ratio(rh, em, okH, okE))
	for _, c := range publishConfigs {
		p("- %s: %s\n", c.label, c.what)
	}
	var first []string
	for _, r := range recs {
		if (r.Kind == result.KindSign || r.Kind == result.KindPublish) && r.FirstErr != "" {
			first = append(first, fmt.Sprintf("%s %s (rep %d): %s", r.Target, r.Workload, r.Rep, r.FirstErr))
		}
	}
	for _, f := range first {
		p("- first error, %s\n", strings.ReplaceAll(f, "|", "\\|"))
	}
	for _, n := range m.notes {
		p("- %s\n", n)
	}
}

// section returns the section of doc whose heading line starts with
// heading, up to the next "## " heading, or nil.
func section(doc []byte, heading string) []byte {
	start := -1
	if bytes.HasPrefix(doc, []byte(heading)) {
		start = 0
	} else if i := bytes.Index(doc, []byte("\n"+heading)); i >= 0 {
		start = i + 1
	}
	if start < 0 {
		return nil
	}
	end := len(doc)
	if j := bytes.Index(doc[start:], []byte("\n## ")); j >= 0 {
		end = start + j + 1
	}
	return append([]byte("\n"), doc[start:end]...)
}
