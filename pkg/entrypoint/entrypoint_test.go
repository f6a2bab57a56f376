package entrypoint

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/testship/testship/pkg/testlog"
)

// The test binary doubles as the entrypoint's child: with ENTRYPOINT_FIXTURE
// set it plays a test binary instead of running the tests.
func TestMain(m *testing.M) {
	if f := os.Getenv("ENTRYPOINT_FIXTURE"); f != "" {
		fixture(f)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func fixture(mode string) {
	switch mode {
	case "gotest":
		fmt.Printf("args: %q index=%s\n", os.Args[1:], os.Getenv(testlog.EnvIndex))
		fmt.Println("=== RUN   TestA")
		fmt.Fprintln(os.Stderr, "    a_test.go:1: to stderr")
		fmt.Println("--- PASS: TestA (0.00s)")
		fmt.Println("--- FAIL: TestB (0.01s)")
		fmt.Println("--- SKIP: TestC (0.00s)")
		fmt.Println("FAIL")
		os.Exit(1)
	case "term-ignore":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		<-c
		fmt.Println("got SIGTERM, not stopping")
		stuckInFixture()
	case "term-die":
		fmt.Println("ready")
		stuckInFixture()
	case "partial":
		fmt.Print("--- PASS: TestTail (0.00s)\nPASS\ntail without newline")
	case "background":
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "ENTRYPOINT_FIXTURE=sleep")
		cmd.Stdout = os.Stdout
		if err := cmd.Start(); err != nil {
			panic(err)
		}
		fmt.Println("left a process holding stdout")
	case "background-chatty":
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "ENTRYPOINT_FIXTURE=chatty")
		cmd.Stdout = os.Stdout
		if err := cmd.Start(); err != nil {
			panic(err)
		}
		fmt.Println("left a process writing to stdout")
	case "chatty":
		for i := 0; i < 400; i++ {
			fmt.Println("still here", i)
			time.Sleep(50 * time.Millisecond)
		}
	case "sleep":
		time.Sleep(20 * time.Second)
	}
}

func stuckInFixture() { time.Sleep(time.Hour) }

// fixtureRun runs the entrypoint on the fixture with extra environment.
func fixtureRun(t *testing.T, o Options, mode string, env ...string) (int, string, testlog.Record) {
	t.Helper()
	var out syncBuffer
	log := filepath.Join(t.TempDir(), "termination-log")
	if o.Binary == "" {
		o.Binary = os.Args[0]
	}
	o.Env = append(append(os.Environ(), "ENTRYPOINT_FIXTURE="+mode), env...)
	o.TerminationLog, o.Stdout = log, &out
	if o.Drain == 0 {
		o.Drain = DefaultDrain
	}
	if o.SyncTimeout == 0 {
		o.SyncTimeout = time.Minute
	}
	code := Supervise(context.Background(), o)
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("no record: %v\noutput:\n%s", err, out.String())
	}
	rec, ok := testlog.ParseRecord(string(b))
	if !ok {
		t.Fatalf("record %s does not parse", b)
	}
	// The record describes exactly what the entrypoint wrote to stdout.
	c := testlog.NewCounter()
	c.Write(out.Bytes())
	if d := rec.Verify(c); d != "" {
		t.Fatalf("record does not match stdout: %s\n%s", d, out.String())
	}
	if rec.Exit != code {
		t.Fatalf("record exit %d, Run returned %d", rec.Exit, code)
	}
	return code, out.String(), rec
}

type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	seen chan struct{} // closed when "ready" was written
	once sync.Once
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	if s.seen != nil && strings.Contains(s.b.String(), "ready\n") {
		s.once.Do(func() { close(s.seen) })
	}
	return len(p), nil
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}
func (s *syncBuffer) String() string { return string(s.Bytes()) }

func TestRunMergesOutputAndWritesTheRecord(t *testing.T) {
	code, out, rec := fixtureRun(t, Options{Args: []string{"-test.v", "-test.run", "TestA"}}, "gotest")
	if code != 1 {
		t.Fatalf("exit %d, want the binary's 1\n%s", code, out)
	}
	if !strings.Contains(out, "=== RUN   TestA\n    a_test.go:1: to stderr\n--- PASS") {
		t.Fatalf("stderr not merged in order:\n%s", out)
	}
	if !strings.Contains(out, `args: ["-test.v" "-test.run" "TestA"] index=`+"\n") {
		t.Fatalf("args not passed as given:\n%s", out)
	}
	if rec.Pass != 1 || rec.Fail != 1 || rec.Skip != 1 || !reflect.DeepEqual(rec.Failed, []string{"TestB"}) || rec.Lines != 7 || rec.Error != "" {
		t.Fatalf("record %+v", rec)
	}
}

func TestUnfinishedLastLine(t *testing.T) {
	code, out, rec := fixtureRun(t, Options{}, "partial")
	if code != 0 || rec.Lines != 3 || rec.Pass != 1 || !strings.HasSuffix(out, "tail without newline") {
		t.Fatalf("exit %d record %+v\n%q", code, rec, out)
	}
	o := newOutput(&bytes.Buffer{})
	o.Write([]byte("abc"))
	o.Linef("testship: x")
	if got := o.w.(*bytes.Buffer).String(); got != "abc\ntestship: x\n" {
		t.Fatalf("own line not on a line of its own: %q", got)
	}
}

func TestBinaryMissing(t *testing.T) {
	code, out, rec := fixtureRun(t, Options{Binary: "/nonexistent/run"}, "gotest")
	if code != ExitNotFound || !strings.Contains(rec.Error, "/nonexistent/run not found") || !strings.Contains(out, "testship: error: test binary /nonexistent/run not found") {
		t.Fatalf("exit %d record %+v\n%s", code, rec, out)
	}
	dir := t.TempDir() // exists but is not executable
	code, _, rec = fixtureRun(t, Options{Binary: dir}, "gotest")
	if code != ExitStart || !strings.Contains(rec.Error, "start test binary") {
		t.Fatalf("exit %d record %+v", code, rec)
	}
}

func TestSigtermThenSigquitAfterGrace(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	out := &syncBuffer{seen: make(chan struct{})}
	log := filepath.Join(t.TempDir(), "log")
	done := make(chan int)
	go func() {
		done <- Supervise(context.Background(), Options{Binary: os.Args[0], Env: append(os.Environ(), "ENTRYPOINT_FIXTURE=term-ignore"),
			TerminationLog: log, Stdout: out, Signals: sigs, QuitAfter: 300 * time.Millisecond, Drain: time.Second})
	}()
	<-out.seen
	sigs <- syscall.SIGTERM
	code := <-done
	s := out.String()
	// Go's runtime answers SIGQUIT with every goroutine's stack and exit 2.
	for _, want := range []string{"got SIGTERM, not stopping", "testship: SIGTERM passed to the test; SIGQUIT", "sending SIGQUIT", "SIGQUIT: quit", "stuckInFixture"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	b, _ := os.ReadFile(log)
	rec, ok := testlog.ParseRecord(string(b))
	if code != 2 || !ok || rec.Exit != 2 {
		t.Fatalf("exit %d, record %s\n%s", code, b, s)
	}
}

func TestSigtermKillsADefaultGoBinary(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	out := &syncBuffer{seen: make(chan struct{})}
	log := filepath.Join(t.TempDir(), "log")
	done := make(chan int)
	go func() {
		done <- Supervise(context.Background(), Options{Binary: os.Args[0], Env: append(os.Environ(), "ENTRYPOINT_FIXTURE=term-die"),
			TerminationLog: log, Stdout: out, Signals: sigs, QuitAfter: time.Minute, Drain: time.Second})
	}()
	<-out.seen
	sigs <- syscall.SIGTERM
	code := <-done
	b, _ := os.ReadFile(log)
	rec, ok := testlog.ParseRecord(string(b))
	if code != 128+15 || !ok || rec.Exit != 143 || rec.Signal != "SIGTERM" {
		t.Fatalf("exit %d, record %s", code, b)
	}
}

func TestBackgroundProcessDoesNotHoldTheEnd(t *testing.T) {
	code, out, _ := fixtureRun(t, Options{Drain: 200 * time.Millisecond}, "background")
	if code != 0 || !strings.Contains(out, "left a process holding stdout") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

func TestBackgroundWriterDoesNotHoldTheEnd(t *testing.T) {
	code, out, _ := fixtureRun(t, Options{Drain: 100 * time.Millisecond}, "background-chatty")
	if code != 0 || !strings.Contains(out, "left a process writing to stdout") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	// Reading stopped while the process still wrote (it writes 400 lines).
	if strings.Contains(out, "still here 399") {
		t.Fatalf("the entrypoint waited for the background writer to finish:\n%s", out)
	}
}

func TestShardArgs(t *testing.T) {
	tests := []string{"TestA", "Test.B"}
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{nil, []string{`-test.run=^(TestA|Test\.B)$`}},
		{[]string{"-test.v", "-test.run", "Test", "-test.count=1"}, []string{"-test.v", "-test.count=1", `-test.run=^(TestA|Test\.B)$`}},
		{[]string{"--test.run=TestA/fast", "-test.v"}, []string{"-test.v", `-test.run=^(TestA|Test\.B)$/fast`}},
		{[]string{"-test.run=Test(A|B/x)/y/z", "-test.run=Other"}, []string{`-test.run=^(TestA|Test\.B)$`}},
		{[]string{"-test.run=Test(A|B/x)/y/z"}, []string{`-test.run=^(TestA|Test\.B)$/y/z`}},
		{[]string{"-test.run=[/]x/y"}, []string{`-test.run=^(TestA|Test\.B)$/y`}},
	} {
		if got := ShardArgs(tc.in, tests); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ShardArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestShardRun(t *testing.T) {
	plan := `[["TestA","Test.B"],[]]`
	_, out, _ := fixtureRun(t, Options{Args: []string{"-test.run", "Test"}}, "gotest",
		"TESTSHIP_POD_MODE=shard", "TESTSHIP_COUNT=2", "TESTSHIP_INDEX=", "JOB_COMPLETION_INDEX=0", "TESTSHIP_SHARD_PLAN="+plan)
	if !strings.Contains(out, `args: ["-test.run=^(TestA|Test\\.B)$"] index=0`) {
		t.Fatalf("shard 0 args (or TESTSHIP_INDEX from JOB_COMPLETION_INDEX) wrong:\n%s", out)
	}
	code, out, rec := fixtureRun(t, Options{}, "gotest",
		"TESTSHIP_POD_MODE=shard", "TESTSHIP_COUNT=2", "TESTSHIP_INDEX=1", "TESTSHIP_SHARD_PLAN="+plan)
	if code != 0 || out != "testship: shard 1 of 2 has no tests; nothing to run\n" || rec.Lines != 1 {
		t.Fatalf("empty shard: exit %d %+v\n%s", code, rec, out)
	}
}

func TestBadPodVariables(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"TESTSHIP_POD_MODE=shards"}, `TESTSHIP_POD_MODE="shards": want single, shard or copy`},
		{[]string{"TESTSHIP_POD_MODE=shard", "TESTSHIP_COUNT=2", "TESTSHIP_INDEX=0", "TESTSHIP_SHARD_PLAN=[TestA]"}, "TESTSHIP_SHARD_PLAN=\"[TestA]\": want a JSON array"},
		{[]string{"TESTSHIP_POD_MODE=shard", "TESTSHIP_COUNT=3", "TESTSHIP_INDEX=0", `TESTSHIP_SHARD_PLAN=[["A"],["B"]]`}, "has 2 shards but TESTSHIP_COUNT=3"},
		{[]string{"TESTSHIP_POD_MODE=shard", "TESTSHIP_COUNT=2", "TESTSHIP_INDEX=2", `TESTSHIP_SHARD_PLAN=[["A"],["B"]]`}, `TESTSHIP_INDEX="2": want an integer from 0 to TESTSHIP_COUNT-1 (1)`},
		{[]string{"TESTSHIP_COUNT=2", "TESTSHIP_INDEX=", "JOB_COMPLETION_INDEX=x"}, `JOB_COMPLETION_INDEX="x"`},
		{[]string{"TESTSHIP_COUNT=0"}, `TESTSHIP_COUNT="0": want a positive integer`},
		{[]string{"TESTSHIP_COUNT=2", "TESTSHIP_SYNC_START=yes"}, `TESTSHIP_SYNC_START="yes": want true or false`},
		{[]string{"TESTSHIP_COUNT=2", "TESTSHIP_SYNC_START=true", "TESTSHIP_JOB_NAME="}, "needs TESTSHIP_JOB_NAME"},
	} {
		env := append([]string{"TESTSHIP_POD_MODE=", "TESTSHIP_INDEX=", "TESTSHIP_SYNC_START=", "JOB_COMPLETION_INDEX="}, tc.env...)
		code, out, rec := fixtureRun(t, Options{}, "gotest", env...)
		if code != ExitConfig || !strings.Contains(rec.Error, tc.want) || !strings.HasPrefix(out, "testship: error: ") || strings.Contains(out, "args:") {
			t.Errorf("%q: exit %d, error %q, want %q\n%s", tc.env, code, rec.Error, tc.want, out)
		}
	}
}

func TestParse(t *testing.T) {
	o, err := Parse([]string{"-testship.quit-after=3s", "--testship.binary", "/x", "-test.v", "-testship.sync-timeout=1s"})
	if err != nil || o.QuitAfter != 3*time.Second || o.Binary != "/x" || o.SyncTimeout != DefaultSyncTimeout ||
		!reflect.DeepEqual(o.Args, []string{"-test.v", "-testship.sync-timeout=1s"}) || o.TerminationLog != DefaultTerminationLog {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := Parse([]string{"-testship.grace=1s"}); err == nil || !strings.Contains(err.Error(), "-testship.quit-after") {
		t.Fatalf("unknown flag: %v", err)
	}
	if _, err := Parse([]string{"-testship.quit-after=-1s"}); err == nil {
		t.Fatal("negative grace accepted")
	}
	if o, _ := Parse(nil); o.Binary != testlog.TestBinaryPath || o.QuitAfter != DefaultQuitAfter {
		t.Fatalf("defaults %+v", o)
	}
}

// BenchmarkOutput is the entrypoint's cost per byte of test output:
// copying, counting, digesting and parsing `go test -v`-like lines.
func BenchmarkOutput(b *testing.B) {
	var chunk bytes.Buffer
	for i := 0; chunk.Len() < 32<<10; i++ {
		fmt.Fprintf(&chunk, "    link_test.go:42: resolved code %d through the Service in 3ms\n", i)
		if i%50 == 0 {
			fmt.Fprintf(&chunk, "--- PASS: TestLink/sub%d (0.00s)\n", i)
		}
	}
	o := newOutput(io.Discard)
	b.SetBytes(int64(chunk.Len()))
	for i := 0; i < b.N; i++ {
		o.Write(chunk.Bytes())
	}
}
