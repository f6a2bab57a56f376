package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/environment"
	"github.com/testship/testship/pkg/imageref"
	"github.com/testship/testship/pkg/runner"
	"github.com/testship/testship/pkg/shard"
	"github.com/testship/testship/pkg/testlog"
)

// runRemote hands the test to the remote runner when ENV_JOB_IMAGE is set
// and this process is not itself the remote runner: it deploys the
// environment, launches the test image in the cluster for this test only
// (-test.run '^TestName$'), and follows it to the end, or, with
// DETACH_RUNNER=true, until it has started. A remote failure fails this
// test with the remote exit code and the failed tests' names. It returns
// true when the remote runner took the test.
func (e *Env) runRemote() bool {
	e.t.Helper()
	rc := e.run
	image := rc.JobImage
	if image == "" || e.pod.Enabled {
		return false
	}
	// Pinned once, before anything is deployed: the run is of that digest,
	// and an image that cannot be resolved stops here.
	pinned, err := imageref.Resolve(e.ctx, image)
	if err != nil {
		e.t.Fatalf("testenv: %s=%s: %v", config.RunJobImage, image, err)
	}
	if rc.Detach {
		// A detached run outlives this process: its environment stays
		// until env:destroy (or the namespace is removed).
		e.cfg.Keep = config.KeepAlways
	}
	if err := e.deploy(); err != nil {
		e.t.Fatalf("testenv: %v", err)
	}
	opts := runner.NewOptions(rc, e.namespace, pinned, e.t.Name())
	opts.Pattern = TestPattern(e.t.Name())
	if rc.Pods.Mode() == testlog.ModeShard {
		// The in-test form hands over one test: one shard, whatever
		// TESTSHIP_SHARDS asks (TESTSHIP_PARALLEL copies it instead).
		top, _, _ := strings.Cut(e.t.Name(), "/")
		plan := shard.Plan([]string{top}, max(rc.Pods.Shards, 1), nil)
		if note := shard.Note(rc.Pods.Shards, plan); note != "" {
			e.t.Logf("testenv: shards: %s; TESTSHIP_PARALLEL runs copies of one test", note)
		}
		opts.SetShardPlan(plan)
	}
	// The remote copy learns the environment from this description, not
	// from Helm's release records (its identity reads no Secrets).
	desc, err := e.env.Describe()
	if err != nil {
		e.t.Fatalf("testenv: describe the environment for the remote runner: %v", err)
	}
	opts.Environment = string(desc)
	cs := e.Kube()
	run, err := e.be.launch(e.ctx, cs, opts, logWriter{e.t})
	if err != nil {
		e.t.Fatalf("testenv: launch the remote runner: %v", err)
	}
	if rc.Detach { // the environment lives at least as long as the detached run may
		if err := environment.KeepUntil(e.ctx, cs, e.namespace, runner.Deadline(rc.Timeout)); err != nil {
			e.t.Logf("testenv: %v", err)
		}
	}
	out := &prefixWriter{prefix: "remote: "}
	// Ctrl-C while waiting cancels the remote run (TESTSHIP_ON_INTERRUPT),
	// then the test ends normally so that its cleanups run.
	ctx, stop := signal.NotifyContext(e.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fo := runner.FollowOptions{WaitOptions: runner.WaitOptions{Out: out, Log: logWriter{e.t}}}
	fo.FromConfig(rc, e.cfg.Keep)
	res, err := e.be.follow(ctx, cs, run, fo)
	if err != nil {
		if res != nil && res.Reason == "" {
			failed := res.Summary.FailedTop()
			e.t.Errorf("testenv: the remote runner's test failed with exit code %d (run %s in namespace %s); failed tests: %s",
				res.ExitCode, run.ID, run.Namespace, strings.Join(failed, ", "))
		} else {
			e.t.Errorf("testenv: remote run %s: %v", run.ID, err)
		}
	}
	return true
}

// TestPattern is the -test.run pattern that selects exactly the named test
// (or subtest: TestA/sub becomes ^TestA$/^sub$).
func TestPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// prefixWriter writes the remote test's output to this process's standard
// output, each line prefixed so that `go test` does not mistake the remote
// `--- FAIL` lines for this process's own results.
type prefixWriter struct {
	mu     sync.Mutex
	prefix string
	mid    bool // the last write did not end a line
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		if !w.mid {
			fmt.Fprint(os.Stdout, w.prefix)
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			os.Stdout.Write(p)
			w.mid = true
			break
		}
		os.Stdout.Write(p[:i+1])
		w.mid = false
		p = p[i+1:]
	}
	return n, nil
}
