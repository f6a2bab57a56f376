//go:build e2e

package runner_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/testship/testship/pkg/runner"
)

// burnCPU keeps every core of this machine (the local cluster's node too)
// busy until the returned function is called.
func burnCPU() func() {
	ctx, cancel := context.WithCancel(context.Background())
	for range runtime.NumCPU() {
		go func() {
			for n := 0; ctx.Err() == nil; n++ {
				for range 1 << 16 {
					n ^= n << 1
				}
			}
		}()
	}
	return cancel
}

// TestRemoteVerifiedUnderLoad runs a test that prints 20,000 lines and
// exits at once, five times while every core is busy: each run either
// verifies its output against the entrypoint's record or reports exactly
// how many lines were lost, and its summary (51 passed: 50 subtests and
// their parent) and exit code are right either way.
func TestRemoteVerifiedUnderLoad(t *testing.T) {
	c := newCluster(t, 0)
	stop := burnCPU()
	defer stop()
	verified, lossy := 0, 0
	for i := range 5 {
		o := c.launchAndFollow(t, c.options(t, "^TestBurst$", nil), runner.FollowOptions{})
		if o.code() != 0 {
			t.Fatalf("run %d: exit %d: %v\n%s", i, o.code(), o.err, o.log)
		}
		p := o.res.Pods[0]
		if p.Record == nil {
			t.Fatalf("run %d: no record from the entrypoint\n%s", i, o.log)
		}
		if tot := o.res.Totals(); tot.Passed != 51 || tot.Failed != 0 || p.Record.Pass != 51 || !strings.Contains(o.log, "PASSED: 51 passed, 0 failed, 0 skipped") {
			t.Errorf("run %d: wrong summary: totals %+v, record %+v\n%s", i, tot, *p.Record, o.log)
		}
		if p.Verified {
			verified++
			if !strings.Contains(o.log, fmt.Sprintf("output verified: %d lines", p.Record.Lines)) {
				t.Errorf("run %d: verified but not said\n%s", i, o.log)
			}
			continue
		}
		lossy++
		want := fmt.Sprintf("%d of %d lines lost", p.Record.Lines-p.Lines, p.Record.Lines)
		if p.LostLines != p.Record.Lines-p.Lines || !strings.Contains(o.log, want) {
			t.Errorf("run %d: the loss is not reported exactly (want %q, lost %d)\n%s", i, want, p.LostLines, o.log)
		}
	}
	t.Logf("under load: %d runs verified, %d reported their exact loss", verified, lossy)
}
