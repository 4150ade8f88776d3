package proccpu

import (
	"os"
	"strconv"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and a parenthesis, utime 250 and stime 31 ticks.
	line := "4242 (notary server) R) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 31 0 0 20 0 9 0 100 1000 10 0\n"
	got, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 281 * clockTick; got != want {
		t.Errorf("parseStat = %v; want %v", got, want)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 x 31 0"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestCPUTimeOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	pids, err := ParsePIDs(" " + strconv.Itoa(os.Getpid()) + ", ")
	if err != nil || len(pids) != 1 {
		t.Fatalf("parsePIDs = %v, %v", pids, err)
	}
	before, err := Time(pids)
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := Time(pids)
	if err != nil {
		t.Fatal(err)
	}
	if after < before {
		t.Errorf("CPU time went back: %v then %v", before, after)
	}
	if _, err := ParsePIDs("12,x"); err == nil {
		t.Error("parsePIDs accepted a name")
	}
	if _, err := Time([]int{1 << 30}); err == nil {
		t.Error("cpuTime of a process that does not exist: no error")
	}
}
