// Package probe is the remote runner's end-to-end subject: a test binary
// with one test per behaviour, picked with -test.run. It lives under
// testdata so `go test ./...` never runs it; the e2e tests build it with
// `go test -c` into an image.
package probe

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if s := os.Getenv("PROBE_EXIT_CODE"); s != "" {
		code, _ = strconv.Atoi(s)
		fmt.Println("TestMain: exiting with", code)
	}
	// for the exit-to-local-exit benchmark
	fmt.Printf("probe: exit-at %d\n", time.Now().UnixNano())
	os.Exit(code)
}

func TestPass(t *testing.T) { fmt.Println("probe: pass") }

func TestFail(t *testing.T) {
	fmt.Println("probe: about to fail")
	t.Error("probe: failing on purpose")
}

func TestPanic(t *testing.T) {
	fmt.Println("probe: about to panic")
	panic("probe: panicking on purpose")
}

// FloodLines is how many numbered lines TestFlood prints.
const FloodLines = 200000

// BigLine returns the 2 MiB line TestFlood prints (without newline).
func BigLine() string {
	var b strings.Builder
	for b.Len() < 2<<20 {
		fmt.Fprintf(&b, "%08d-abcdefghijklmnopqrstuvwxyz.", b.Len())
	}
	return b.String()[:2<<20]
}

func TestFlood(t *testing.T) {
	w := os.Stdout
	for i := 0; i < FloodLines; i++ {
		fmt.Fprintf(w, "flood %06d %s\n", i, strings.Repeat("x", i%50))
		if i == FloodLines/2 {
			fmt.Fprintln(w, BigLine())
		}
	}
	fmt.Fprintln(w, "flood: last line")
	// containerd 1.6 can drop what is still in the container's stdout
	// pipe when the process exits; TestFlood proves testship loses nothing
	// of what reaches the log, so it gives the runtime a moment to copy it.
	time.Sleep(time.Second)
}

func TestEnv(t *testing.T) {
	fmt.Printf("probe: FOO=%s\n", os.Getenv("FOO"))
	sum := sha256.Sum256([]byte(os.Getenv("E2E_TEST_PROBE_SECRET")))
	fmt.Printf("probe: secret sha256=%s set=%v\n", hex.EncodeToString(sum[:]), os.Getenv("E2E_TEST_PROBE_SECRET") != "")
	fmt.Printf("probe: remote=%s namespace=%s run=%s\n", os.Getenv("TESTSHIP_REMOTE"), os.Getenv("TESTSHIP_NAMESPACE"), os.Getenv("TESTSHIP_RUN_ID"))
}

// TestSleep prints a line every 200ms for PROBE_SLEEP (default 10s).
func TestSleep(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("PROBE_SLEEP"))
	if err != nil {
		d = 10 * time.Second
	}
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		fmt.Printf("sleep %d\n", i)
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Println("sleep: done")
}

// TestMemory allocates and touches memory until it is killed.
func TestMemory(t *testing.T) {
	var keep [][]byte
	for i := 0; ; i++ {
		b := make([]byte, 16<<20)
		for j := range b {
			b[j] = byte(j)
		}
		keep = append(keep, b)
		fmt.Printf("memory: %d MiB\n", (i+1)*16)
	}
}

// TestReport has passing, failing, skipped and parallel subtests.
func TestReport(t *testing.T) {
	t.Run("pass", func(t *testing.T) {})
	t.Run("fail", func(t *testing.T) { t.Error("report: failing subtest") })
	t.Run("skip", func(t *testing.T) { t.Skip("report: skipped subtest") })
	t.Run("group", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			t.Run(fmt.Sprintf("par%d", i), func(t *testing.T) {
				t.Parallel()
				time.Sleep(time.Duration(100*(3-i)) * time.Millisecond)
			})
		}
	})
}
