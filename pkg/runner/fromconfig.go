package runner

import "github.com/testship/testship/pkg/config"

// NewOptions returns the options of a run of image's test in namespace as
// the run variables decide (FromConfig), with the environment the remote
// test gets from this process (EnvFromProcess). run:remote and testenv's
// in-test form both start their runs from it.
func NewOptions(c config.Run, namespace, image, test string) Options {
	o := Options{Namespace: namespace, Image: image, Test: test}
	o.FromConfig(c)
	o.Env, o.Secrets = EnvFromProcess()
	return o
}

// FromConfig fills what the run variables and KEEP_ENVIRONMENTS decide
// about following a run: DETACH_RUNNER=true detaches (as does a caller
// that set Detach already), TESTSHIP_WAIT_TIMEOUT bounds the wait,
// TESTSHIP_ON_INTERRUPT=leave leaves the run going on Ctrl-C, and a run
// that hit a fault is kept for inspection unless KEEP_ENVIRONMENTS=never.
func (fo *FollowOptions) FromConfig(c config.Run, keep config.Keep) {
	fo.Detach = fo.Detach || c.Detach
	fo.Timeout = c.WaitTimeout
	fo.LeaveOnInterrupt = c.LeaveOnInterrupt
	fo.KeepOnFault = keep != config.KeepNever
}
