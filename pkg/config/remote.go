package config

import "github.com/testship/testship/pkg/testlog"

// Variables the remote runner's Job sets for the remote copy of the test
// (area "remote"): testship writes them, a user never needs to.
var (
	RemoteFlag = Declare(Var{Name: "TESTSHIP_REMOTE", Area: "remote",
		Help: "set to true on the remote runner's pod: this process is the remote copy of the test (it connects, deploys nothing)"})
	RemoteNamespace = Declare(Var{Name: "TESTSHIP_NAMESPACE", Area: "remote",
		Help: "set on the remote runner's pod: the environment's namespace"})
	RemoteRunID = Declare(Var{Name: "TESTSHIP_RUN_ID", Area: "remote",
		Help: "set on the remote runner's pod: the run's id"})
	RemoteEnvironment = Declare(Var{Name: "TESTSHIP_ENVIRONMENT", Area: "remote", Secret: true,
		Help: "set on the remote runner's pod from the run's Secret: JSON description of the deployed environment (releases, Services, values)"})

	// The pod's place in a sharded or parallel run, read by testship's
	// entrypoint (pkg/testlog names them; the entrypoint reads them itself
	// so it does not link this package) and by tests that split work.
	PodIndex = Declare(Var{Name: testlog.EnvIndex, Area: "remote",
		Help: "set on the remote runner's pod: its index in the run, 0 to TESTSHIP_COUNT-1 (the Indexed Job's completion index)"})
	PodCount = Declare(Var{Name: testlog.EnvCount, Area: "remote",
		Help: "set on the remote runner's pod: how many pods the run has (shards or copies; 1 for a single pod)"})
	PodMode = Declare(Var{Name: testlog.EnvMode, Area: "remote",
		Help: "set on the remote runner's pod: single, shard (each pod runs its share of the tests) or copy (each pod runs the same tests)"})
	PodShardPlan = Declare(Var{Name: testlog.EnvShardPlan, Area: "remote",
		Help: "set on a sharded run's pods: JSON array of each index's top-level test names; the entrypoint runs its own index's"})
	PodJobName = Declare(Var{Name: testlog.EnvJobName, Area: "remote",
		Help: "set on the remote runner's pod: the run's Job"})
)

// PodSyncStart is the user's TESTSHIP_SYNC_START (declared once, with the
// run's variables), passed on to the pods as it is.
var PodSyncStart = RunSyncStart

// IsRemote reports whether this process is the remote runner's copy of a
// test (TESTSHIP_REMOTE=true, set on the remote runner's Job; read as Load reads it:
// a value Load refuses counts as false here).
func IsRemote() bool {
	b, _ := Bool(RemoteFlag)
	return b
}
