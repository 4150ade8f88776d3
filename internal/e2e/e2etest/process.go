package e2etest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BaseEnv is the environment every program a test runs starts from:
// nothing of the caller's environment leaks in but PATH (and TMPDIR), so a
// developer's ~/.notary, ~/.docker or DOCKER_HOST never changes a result.
func BaseEnv(home string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"LANG=C.UTF-8",
		"XDG_RUNTIME_DIR=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
	}
	if v := os.Getenv("TMPDIR"); v != "" {
		env = append(env, "TMPDIR="+v)
	}
	return env
}

// ProcessOptions describe a long-running child process.
type ProcessOptions struct {
	Name    string   // for messages; default the program's base name
	Args    []string // the program and its arguments
	Dir     string   // working directory
	Env     []string // the whole environment (start from BaseEnv)
	LogFile string   // stdout and stderr are appended to it
}

// Process is a running child with its output in a log file.
type Process struct {
	Name    string
	LogFile string
	Cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// StartProcess starts a child process; Stop (or Kill) ends it.
func StartProcess(o ProcessOptions) (*Process, error) {
	if o.Name == "" {
		o.Name = filepath.Base(o.Args[0])
	}
	lf, err := os.OpenFile(o.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.Args[0], o.Args[1:]...)
	cmd.Env, cmd.Dir = o.Env, o.Dir
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s: %w", o.Name, err)
	}
	p := &Process{Name: o.Name, LogFile: o.LogFile, Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

// Daemon starts a child process for the test and stops it (SIGTERM, then
// SIGKILL after 5 s) when the test ends; when the test failed, the end of
// its log goes to the test log.
func Daemon(t testing.TB, o ProcessOptions) *Process {
	t.Helper()
	p, err := StartProcess(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(5 * time.Second); err != nil {
			t.Log(err)
		}
		if t.Failed() {
			t.Logf("%s log (%s, tail):\n%s", p.Name, p.LogFile, p.LogTail(40))
		}
	})
	return p
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitError describes how the process ended; call it after Done.
func (p *Process) ExitError() error {
	if p.err == nil {
		return errors.New("exit status 0")
	}
	return p.err
}

// Stop sends SIGTERM and waits; a process still running after grace is
// killed. It returns an error only when it had to kill.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s ignored SIGTERM for %v and was killed", p.Name, grace)
	}
}

// Kill ends the process abruptly (SIGKILL) and waits for it.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Log is the whole log so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogFile)
	return string(b)
}

// LogTail is the last n lines of the log.
func (p *Process) LogTail(n int) string { return FileTail(p.LogFile, n) }

// FileTail is the last n lines of a file.
func FileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ScanLog calls line for every line of a log file after byte offset since
// (a JSON log: one object a line); lines up to 1 MiB.
func ScanLog(file string, since int64, line func([]byte)) {
	f, err := os.Open(file)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(since, io.SeekStart); err != nil {
		return
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line(sc.Bytes())
	}
}

// LogSize is the current end of a log file, an offset for ScanLog.
func LogSize(file string) int64 {
	fi, err := os.Stat(file)
	if err != nil {
		return 0
	}
	return fi.Size()
}
