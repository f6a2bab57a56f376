// Package probe is the remote runner's end-to-end subject: a test binary
// with one test per behaviour, picked with -test.run. It lives under
// testdata so `go test ./...` never runs it; the e2e tests build it with
// `go test -c` into an image.
package probe

import (
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
