// Package probe is the remote runner's end-to-end subject: a test binary
// with one test per behaviour, picked with -test.run. It lives under
// testdata so `go test ./...` never runs it; the e2e tests build it with
// `go test -c` into an image.
package probe

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testship/testship/pkg/testlog"
)

func TestMain(m *testing.M) {
	var finish func(code int)
	if os.Getenv("PROBE_RECORD") == "true" {
		finish = recordOutput()
	}
	code := m.Run()
	if s := os.Getenv("PROBE_EXIT_CODE"); s != "" {
		code, _ = strconv.Atoi(s)
		fmt.Println("TestMain: exiting with", code)
	}
	// for the exit-to-local-exit benchmark
	fmt.Printf("probe: exit-at %d\n", time.Now().UnixNano())
	if finish != nil {
		finish(code)
	}
	os.Exit(code)
}

// recordOutput plays testship's entrypoint for the runner's tests of
// output verification (PROBE_RECORD=true): everything written to stdout
// goes through a testlog.Counter, and finish writes the record to the
// termination message. With PROBE_LOSE_LINES=N (at the index in
// PROBE_LOSE_INDEX, when set) the record counts N lines that were never
// written, as if the container runtime had dropped the output's tail.
func recordOutput() (finish func(code int)) {
	real := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	os.Stdout = w
	counter := testlog.NewCounter()
	var sum testlog.Summary
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				real.Write(line)
				counter.Write(line)
				sum.Observe(line)
			}
			if err != nil {
				return
			}
		}
	}()
	return func(code int) {
		w.Close()
		<-copied
		os.Stdout = real
		if n, _ := strconv.Atoi(os.Getenv("PROBE_LOSE_LINES")); n > 0 && (os.Getenv("PROBE_LOSE_INDEX") == "" || os.Getenv("PROBE_LOSE_INDEX") == os.Getenv("JOB_COMPLETION_INDEX")) {
			for i := 0; i < n; i++ {
				counter.Write([]byte(fmt.Sprintf("probe: a line the runtime dropped %d\n", i)))
			}
		}
		rec := testlog.Record{Exit: code, Lines: counter.Lines(), Bytes: counter.Bytes(), SHA256: counter.Sum(),
			Pass: len(sum.Passed), Fail: len(sum.Failed), Skip: len(sum.Skipped), Failed: sum.FailedTop()}
		if err := os.WriteFile("/dev/termination-log", rec.Encode(), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "probe: write the record: %v\n", err)
		}
	}
}

// TestShard is a shard (or copy) of an Indexed Job: it prints
// PROBE_SHARD_LINES (default 200) numbered lines naming its index
// (JOB_COMPLETION_INDEX), in bursts, runs a passing and a skipped subtest,
// sleeps PROBE_SHARD_SLEEP at the index in PROBE_SLEEP_INDEX, and fails at
// the indexes listed in PROBE_FAIL_INDEXES (comma-separated).
func TestShard(t *testing.T) {
	index := os.Getenv("JOB_COMPLETION_INDEX")
	n, err := strconv.Atoi(os.Getenv("PROBE_SHARD_LINES"))
	if err != nil {
		n = 200
	}
	for i := 0; i < n; i++ {
		fmt.Printf("shard %s line %04d\n", index, i)
		if i%50 == 49 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Run("pass", func(t *testing.T) {})
	t.Run("skip", func(t *testing.T) { t.Skip("probe: skipped in every shard") })
	if d, err := time.ParseDuration(os.Getenv("PROBE_SHARD_SLEEP")); err == nil && os.Getenv("PROBE_SLEEP_INDEX") == index {
		fmt.Printf("shard %s sleeping %s\n", index, d)
		time.Sleep(d)
	}
	for _, f := range strings.Split(os.Getenv("PROBE_FAIL_INDEXES"), ",") {
		if f == index {
			t.Errorf("probe: shard %s fails on purpose", index)
		}
	}
	fmt.Printf("shard %s done\n", index)
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
	fmt.Printf("probe: environment=%s\n", os.Getenv("TESTSHIP_ENVIRONMENT"))
	fmt.Printf("probe: uid=%d gid=%d\n", os.Getuid(), os.Getgid())
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "Seccomp:") || strings.HasPrefix(line, "NoNewPrivs:") || strings.HasPrefix(line, "CapEff:") {
				fmt.Printf("probe: %s\n", strings.Join(strings.Fields(line), " "))
			}
		}
	}
}

// TestReadSecrets tries, with the pod's own ServiceAccount token, to read
// each Secret named in PROBE_READ_SECRETS (comma-separated) in the run's
// namespace, after PROBE_SLEEP, and prints the HTTP status of each.
func TestReadSecrets(t *testing.T) {
	if d, err := time.ParseDuration(os.Getenv("PROBE_SLEEP")); err == nil {
		time.Sleep(d)
	}
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
	token, err := os.ReadFile(sa + "token")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(sa + "ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	host := net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))
	for _, name := range strings.Split(os.Getenv("PROBE_READ_SECRETS"), ",") {
		req, _ := http.NewRequest("GET", "https://"+host+"/api/v1/namespaces/"+os.Getenv("TESTSHIP_NAMESPACE")+"/secrets/"+name, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("read secret %s: %v", name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Printf("probe: secret %s HTTP %d\n", name, resp.StatusCode)
	}
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

// TestBurst prints 20,000 lines over 50 subtests and exits at once, with no
// pause for the runtime to copy the tail: the case where containerd 1.6 can
// drop the last lines, which the entrypoint's record must expose.
func TestBurst(t *testing.T) {
	for i := 0; i < 50; i++ {
		t.Run(fmt.Sprintf("part%02d", i), func(t *testing.T) {
			for j := 0; j < 400; j++ {
				fmt.Printf("burst %02d %03d %s\n", i, j, strings.Repeat("y", 60))
			}
		})
	}
}
