//go:build e2e

package runner_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/pkg/runner"
)

// podStart creates a bare pod running the probe and returns how long until
// the watch sees its container running: the floor any runner can reach.
func podStart(tb testing.TB, c *cluster, image string) time.Duration {
	ctx := context.Background()
	name := fmt.Sprintf("bare-%d", time.Now().UnixNano())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "test", Image: image, Args: []string{"-test.v", "-test.run", "^TestSleep$"}, Env: []corev1.EnvVar{{Name: "PROBE_SLEEP", Value: "1s"}}}},
		},
	}
	w, err := c.cs.CoreV1().Pods(c.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: "0", FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Stop()
	start := time.Now()
	if _, err := c.cs.CoreV1().Pods(c.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		tb.Fatal(err)
	}
	defer c.cs.CoreV1().Pods(c.ns).Delete(ctx, name, metav1.DeleteOptions{})
	for ev := range w.ResultChan() {
		if ev.Type == watch.Error {
			tb.Fatalf("watch: %v", ev.Object)
		}
		p, ok := ev.Object.(*corev1.Pod)
		if !ok {
			continue
		}
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Running != nil || s.State.Terminated != nil {
				return time.Since(start)
			}
		}
	}
	tb.Fatal("watch ended")
	return 0
}

// BenchmarkRemoteRun measures, per run of a passing test: launch to the
// first remote output line (first-line-ms) next to a bare pod's start
// (pod-start-ms), and the remote test's exit to Follow's return
// (exit-to-local-ms), and the API requests of one run (requests/run).
// Run with -benchtime=5x.
func BenchmarkRemoteRun(b *testing.B) {
	c := newCluster(b, 0)
	image := probeImage(b)
	ctx := context.Background()
	var podTotal, firstTotal, exitTotal time.Duration
	var requests int64
	// warm the node's image cache
	podStart(b, c, image)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		podTotal += podStart(b, c, image)
		o := c.options(b, "^TestPass$", nil)
		var first time.Time
		var exitAt int64
		before := c.counter.requests.Load()
		start := time.Now()
		run, err := runner.Launch(ctx, c.cs, o, nil)
		if err != nil {
			b.Fatal(err)
		}
		res, err := runner.Follow(ctx, c.cs, run, runner.FollowOptions{WaitOptions: runner.WaitOptions{OnLine: func(line []byte) {
			if first.IsZero() {
				first = time.Now()
			}
			if v, ok := bytes.CutPrefix(line, []byte("probe: exit-at ")); ok {
				exitAt, _ = strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			}
		}}})
		end := time.Now()
		requests += c.counter.requests.Load() - before
		if err != nil || res.ExitCode != 0 || exitAt == 0 {
			b.Fatalf("run: %v %+v exit-at %d", err, res, exitAt)
		}
		firstTotal += first.Sub(start)
		exitTotal += end.Sub(time.Unix(0, exitAt))
	}
	n := float64(b.N)
	b.ReportMetric(float64(podTotal.Milliseconds())/n, "pod-start-ms")
	b.ReportMetric(float64(firstTotal.Milliseconds())/n, "first-line-ms")
	b.ReportMetric(float64(exitTotal.Milliseconds())/n, "exit-to-local-ms")
	b.ReportMetric(float64(requests)/n, "requests/run")
}

// TestRemoteRequestsDoNotGrowWithLength runs a 2 s and a 12 s test: the
// runner watches and streams, so both make the same number of API requests.
func TestRemoteRequestsDoNotGrowWithLength(t *testing.T) {
	c := newCluster(t, 0)
	count := func(d string) int64 {
		before := c.counter.requests.Load()
		o := c.launchAndFollow(t, c.options(t, "^TestSleep$", map[string]string{"PROBE_SLEEP": d}), runner.FollowOptions{})
		if o.code() != 0 {
			t.Fatalf("run of %s: %v\n%s", d, o.err, o.log)
		}
		return c.counter.requests.Load() - before
	}
	short, long := count("2s"), count("12s")
	t.Logf("API requests: %d for a 2 s run, %d for a 12 s run", short, long)
	if long > short+2 {
		t.Errorf("a 12 s run made %d API requests, a 2 s run %d: requests grow with the run's length", long, short)
	}
}

// throttleCounter is a client-side rate limiter that counts the requests
// it had to hold back.
type throttleCounter struct {
	flowcontrol.RateLimiter
	throttled atomic.Int64
}

func (t *throttleCounter) Wait(ctx context.Context) error {
	if t.RateLimiter.TryAccept() {
		return nil
	}
	t.throttled.Add(1)
	return t.RateLimiter.Wait(ctx)
}

// TestRemoteTwentyAtOnce starts 20 runs at once through one client with
// testship's client settings (QPS 50, burst 100) and follows them all.
func TestRemoteTwentyAtOnce(t *testing.T) {
	c := newCluster(t, 0)
	rc, err := clientcmd.BuildConfigFromFlags("", e2e.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	limiter := &throttleCounter{RateLimiter: flowcontrol.NewTokenBucketRateLimiter(50, 100)}
	rc.RateLimiter = limiter
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := c.options(t, "^TestSleep$", map[string]string{"PROBE_SLEEP": "2s"})
			run, err := runner.Launch(ctx, cs, o, nil)
			if err != nil {
				errs[i] = err
				return
			}
			res, err := runner.Follow(ctx, cs, run, runner.FollowOptions{})
			if err == nil && res.ExitCode != 0 {
				err = fmt.Errorf("exit %d", res.ExitCode)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	t.Logf("20 runs at once: %d requests held back by the client-side rate limiter (none failed)", limiter.throttled.Load())
}
