package daemon

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func newFlags() (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	s := fs.String("listen", "127.0.0.1:4443", "`address` to listen on")
	fs.Bool("insecure-no-auth", false, "serve without auth")
	fs.Duration("timeout", 0, "a bound")
	return fs, s
}

var cmd = Command{Program: "signet-x", Usage: "Usage: signet-x [flags]\n\nDoes x.\n", Examples: "  signet-x --listen 127.0.0.1:1\n"}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "unknown flag --bogus (see signet-x --help)"},
		{[]string{"-bogus=1"}, "unknown flag --bogus (see signet-x --help)"},
		{[]string{"--listen"}, "flag needs an argument: --listen (see signet-x --help)"},
		{[]string{"--timeout", "soon"}, `invalid value "soon" for flag --timeout: parse error (see signet-x --help)`},
	} {
		fs, _ := newFlags()
		err := cmd.Parse(fs, tt.args)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q: %v, want %s", tt.args, err, tt.want)
		}
	}
	fs, listen := newFlags()
	if err := cmd.Parse(fs, []string{"--listen", "0.0.0.0:1"}); err != nil || *listen != "0.0.0.0:1" {
		t.Errorf("good flags: %v %q", err, *listen)
	}
	fs, _ = newFlags()
	if err := cmd.Parse(fs, []string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
	fs, _ = newFlags()
	if err := cmd.Parse(fs, []string{"--version"}); !errors.Is(err, ErrVersion) {
		t.Errorf("--version: %v", err)
	}
}

func TestHelp(t *testing.T) {
	fs, _ := newFlags()
	_ = fs.Duration("grace", 30*time.Second, "shutdown bound")
	var b bytes.Buffer
	cmd.Help(&b, fs)
	out := b.String()
	for _, want := range []string{
		"Usage: signet-x [flags]\n\nDoes x.\n\nFlags:\n",
		"  --listen address\n        address to listen on (default 127.0.0.1:4443)\n",
		"  --insecure-no-auth\n        serve without auth\n",
		"  --grace duration\n        shutdown bound (default 30s)\n",
		"\nExamples:\n  signet-x --listen 127.0.0.1:1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\n  -listen") {
		t.Errorf("single-dash flag in help:\n%s", out)
	}
}

func TestLogDurations(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var b bytes.Buffer
		log := slog.New(LogHandler(&b, slog.LevelInfo, format))
		log.Info("request", "duration", 1500*time.Millisecond, slog.Group("g", slog.Duration("took", 250*time.Microsecond)))
		log.Debug("hidden")
		out := b.String()
		if !strings.Contains(out, "1.5s") || !strings.Contains(out, "250µs") || strings.Contains(out, "1500000000") || strings.Contains(out, "hidden") {
			t.Errorf("%s log: %s", format, out)
		}
	}
}
