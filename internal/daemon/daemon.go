// Package daemon is what Signet's daemons (signet-server, signet-signer,
// and the binaries to come) do the same way: read their command line with
// the standard flag package and talk about it — help on standard output in
// the --flag style the docs use, with examples; one line for a bad flag
// that points to --help instead of dumping the whole usage on standard
// error; --version from the build information (package version) — and
// write their logs (log/slog, JSON or text, durations as Go duration
// strings rather than nanosecond counts).
//
// Invariants: Parse never writes anything; the caller prints what it
// returns (Help to stdout and exit 0, an error on one line and exit 2).
package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/signet-trust/signet/internal/version"
)

// ErrVersion is returned by Parse for --version.
var ErrVersion = errors.New("daemon: version requested")

// Command describes a daemon's command line for its help.
type Command struct {
	// Program is the binary's name ("signet-server"), or the name and a
	// subcommand ("signet-signer rekey").
	Program string
	// Usage is the text above the flags: the synopsis and what the
	// command does.
	Usage string
	// Examples follow the flags; each line as it is printed.
	Examples string
}

// Parse parses args into fs without printing. It returns flag.ErrHelp
// for -h/--help, ErrVersion for --version (when the command does not
// define a flag of that name itself), and otherwise an error on one line
// that names the flag with two dashes and ends with "see PROGRAM --help".
func (c Command) Parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var showVersion bool
	if fs.Lookup("version") == nil {
		fs.BoolVar(&showVersion, "version", false, "print the version (from the build information) and exit")
	}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return flag.ErrHelp
	case err != nil:
		return fmt.Errorf("%s (see %s --help)", dashes(err.Error()), c.Program)
	case showVersion:
		return ErrVersion
	}
	return nil
}

// dashes rewords the flag package's errors with the --flag spelling.
func dashes(msg string) string {
	if rest, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return "unknown flag --" + rest
	}
	for _, p := range []string{"flag needs an argument: -", "for flag -"} {
		if i := strings.Index(msg, p); i >= 0 {
			return msg[:i+len(p)-1] + "--" + msg[i+len(p):]
		}
	}
	return msg
}

// Help writes the usage, the flags in --flag style, and the examples.
func (c Command) Help(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, strings.TrimRight(c.Usage, "\n")+"\n\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		if !isZero(f) {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "        %s\n", strings.ReplaceAll(usage, "\n", "\n        "))
	})
	if c.Examples != "" {
		fmt.Fprint(w, "\nExamples:\n"+strings.TrimRight(c.Examples, "\n")+"\n")
	}
}

func isZero(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

// Version writes the one-line version of program.
func Version(w io.Writer, program string) {
	fmt.Fprintln(w, version.String(program))
}

// LogHandler is a daemon's log handler on w: JSON, or text when format is
// "text", at level. Durations are written as Go duration strings ("1.5s",
// "230µs") so that a person reading the log need not count nanoseconds.
func LogHandler(w io.Writer, level slog.Level, format string) slog.Handler {
	o := &slog.HandlerOptions{Level: level, ReplaceAttr: readableDuration}
	if format == "text" {
		return slog.NewTextHandler(w, o)
	}
	return slog.NewJSONHandler(w, o)
}

func readableDuration(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
