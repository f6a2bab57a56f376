// Package testlog is the contract between testship's entrypoint (the small
// static program in the base image that runs the test binary in the pod)
// and the runner that follows the pod from outside: where the binaries
// live, the variables the Job sets for the entrypoint, what a `go test -v`
// output says (Summary), and the short record the entrypoint leaves as the
// container's termination message (Record), computed by a Counter over the
// exact bytes the test wrote.
//
// It depends on the standard library only, so the entrypoint stays small.
package testlog

// Paths inside test images.
const (
	// EntrypointPath is testship's entrypoint in the base image.
	EntrypointPath = "/testship/entrypoint"
	// TestBinaryPath is the test (or app) binary in test and app images.
	TestBinaryPath = "/testship/run"
)

// Variables the runner's Job sets on the pod for the entrypoint and the
// test (declared, with help, in pkg/config; read here so the entrypoint
// does not link the configuration package).
const (
	// EnvIndex is the pod's index in its run: 0..EnvCount-1 (the Indexed
	// Job's completion index; 0 for a single-pod run).
	EnvIndex = "TESTSHIP_INDEX"
	// EnvCount is the number of pods in the run (1 for a single-pod run).
	EnvCount = "TESTSHIP_COUNT"
	// EnvMode is "shard" (each pod runs its share of the tests), "copy"
	// (each pod runs the same tests) or "single".
	EnvMode = "TESTSHIP_POD_MODE"
	// EnvShardPlan is the shard plan as JSON: an array with one array of
	// top-level test names per index. The entrypoint runs its index's tests.
	EnvShardPlan = "TESTSHIP_SHARD_PLAN"
	// EnvSyncStart, "true", holds each pod until all EnvCount pods of the
	// Job are running, then starts the test in all of them together.
	EnvSyncStart = "TESTSHIP_SYNC_START"
	// EnvJobName is the run's Job (for the synchronised start's watch).
	EnvJobName = "TESTSHIP_JOB_NAME"
)

// Pod modes (EnvMode).
const (
	ModeSingle = "single"
	ModeShard  = "shard"
	ModeCopy   = "copy"
)
