package runner

import (
	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/testlog"
)

// NewOptions returns the options of a run of image's test in namespace as
// the run variables decide (FromConfig), with the environment the remote
// test gets from this process (EnvFromProcess). run:remote and testenv's
// in-test form both start their runs from it. A sharded run still needs
// its plan (SetShardPlan).
func NewOptions(c config.Run, namespace, image, test string) Options {
	o := Options{Namespace: namespace, Image: image, Test: test}
	o.FromConfig(c)
	o.Env, o.Secrets = EnvFromProcess()
	return o
}

// setPods takes the run's pods from TESTSHIP_PARALLEL, TESTSHIP_SHARDS,
// TESTSHIP_SYNC_START, TESTSHIP_FAIL_FAST and TESTSHIP_SPREAD: copies
// are complete here; shards get their count from the plan
// (SetShardPlan), since there may be fewer tests than shards asked.
func (o *Options) setPods(p config.Pods) {
	o.Mode = p.Mode()
	o.SyncStart, o.FailFast, o.Spread = p.SyncStart, p.FailFast, p.Spread
	o.Pods, o.ShardPlan = 1, nil
	if o.Mode == testlog.ModeCopy {
		o.Pods = p.Copies
	}
}

// SetShardPlan makes a sharded run of one pod per entry of plan (from
// shard.Prepare), each running its entry's top-level tests.
func (o *Options) SetShardPlan(plan [][]string) {
	o.ShardPlan = plan
	o.Pods = len(plan)
}

// FromConfig fills what the run variables and KEEP_ENVIRONMENTS decide
// about following a run: DETACH_RUNNER=true (or run:detached, which sets
// config.Run.Detach) detaches, TESTSHIP_WAIT_TIMEOUT bounds the wait,
// TESTSHIP_ON_INTERRUPT=leave leaves the run going on Ctrl-C,
// TESTSHIP_FAIL_FAST=true ends the wait at the first failed pod, and a
// run that hit a fault is kept for inspection unless
// KEEP_ENVIRONMENTS=never.
func (fo *FollowOptions) FromConfig(c config.Run, keep config.Keep) {
	fo.Detach = c.Detach
	fo.Timeout = c.WaitTimeout
	fo.LeaveOnInterrupt = c.LeaveOnInterrupt
	fo.KeepOnFault = keep != config.KeepNever
	fo.FailFast = c.Pods.FailFast
}
