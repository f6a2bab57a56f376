//go:build e2e

package pipeline_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	stack "github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/internal/testimage"
	"github.com/testship/testship/pkg/pipeline"
)

// The sharding benchmarks (issue #14), through pipeline.Remote as
// run:remote calls it, on tests/shardbench (tests that only sleep):
//
//   - even: 8 tests of 10 s, unsharded and TESTSHIP_SHARDS=4; the target is
//     sharded ≤ 1.3 × (serial / 4) + one pod start, reported as
//     even-vs-ideal = (sharded − start) / (serial / 4);
//   - uneven: 40 s, 4 × 10 s, 4 × 5 s on 4 shards, first split by name
//     (which records the durations), then by the recorded durations; the
//     best split takes 40 s, reported as uneven-vs-best = (balanced −
//     start) / 40 s (target ≤ 1.1).
//
// "start" is the wall time of a run of one empty test: a pod start plus
// the run's fixed cost. Each iteration takes about four minutes: run them
// with BENCH_TIME=1x.

type benchRun struct {
	b   *testing.B
	env map[string]string
}

// remote runs pipeline.Remote with the bench's variables plus extra and
// returns its wall time; the test outcome must be a pass.
func (r benchRun) remote(extra ...string) time.Duration {
	r.b.Helper()
	for k, v := range r.env {
		r.b.Setenv(k, v)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		r.b.Setenv(extra[i], extra[i+1])
	}
	o, err := pipeline.Load()
	if err != nil {
		r.b.Fatal(err)
	}
	o.Out, o.Log = io.Discard, io.Discard
	start := time.Now()
	if err := pipeline.Remote(context.Background(), o); err != nil {
		r.b.Fatalf("run:remote %v: %v", extra, err)
	}
	return time.Since(start)
}

func BenchmarkShards(b *testing.B) {
	b.Chdir(testimage.RepoRoot(b))
	img, _ := testimage.Test(b, stack.Registry(b), "shardbench", "./tests/shardbench", "shardbench")
	var rnd [3]byte
	rand.Read(rnd[:])
	ns := "testship-bench-" + hex.EncodeToString(rnd[:])
	rc, err := clientcmd.BuildConfigFromFlags("", stack.Kubeconfig(b))
	if err != nil {
		b.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(rc)
	b.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	r := benchRun{b: b, env: map[string]string{
		"KUBECONFIG":            stack.Kubeconfig(b),
		"ENV_NAMESPACE":         ns,
		"ENV_JOB_IMAGE":         img,
		"TESTSHIP_CHARTS":       "none",
		"TESTSHIP_TEST_PACKAGE": "./tests/shardbench",
		"TESTSHIP_TEST_TAGS":    "shardbench",
		"KEEP_ENVIRONMENTS":     "always",
		"TESTSHIP_SHARDS":       "1",
	}}
	r.remote("TESTSHIP_RUN", "^TestNothing$", "TESTSHIP_STATE_DIR", b.TempDir()) // namespace, image pulled
	var start, serial, even, byName, balanced time.Duration
	b.ResetTimer()
	for range b.N {
		start += r.remote("TESTSHIP_RUN", "^TestNothing$", "TESTSHIP_STATE_DIR", b.TempDir())
		serial += r.remote("TESTSHIP_RUN", "^TestEven", "TESTSHIP_STATE_DIR", b.TempDir())
		even += r.remote("TESTSHIP_RUN", "^TestEven", "TESTSHIP_SHARDS", "4", "TESTSHIP_STATE_DIR", b.TempDir())
		state := b.TempDir()
		byName += r.remote("TESTSHIP_RUN", "^TestUneven", "TESTSHIP_SHARDS", "4", "TESTSHIP_STATE_DIR", state)
		balanced += r.remote("TESTSHIP_RUN", "^TestUneven", "TESTSHIP_SHARDS", "4", "TESTSHIP_STATE_DIR", state)
	}
	n := float64(b.N)
	sec := func(d time.Duration) float64 { return d.Seconds() / n }
	b.ReportMetric(sec(start), "start-s")
	b.ReportMetric(sec(serial), "even-serial-s")
	b.ReportMetric(sec(even), "even-4shards-s")
	b.ReportMetric((sec(even)-sec(start))/(sec(serial)/4), "even-vs-ideal")
	b.ReportMetric(sec(byName), "uneven-by-name-s")
	b.ReportMetric(sec(balanced), "uneven-balanced-s")
	b.ReportMetric((sec(balanced)-sec(start))/40, "uneven-vs-best")
}
