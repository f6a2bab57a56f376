package config

import "fmt"

// Remote is what the remote runner's Job tells the remote copy of a test
// (area "remote"); zero outside the remote runner's pod.
type Remote struct {
	// Enabled: TESTSHIP_REMOTE=true, this process is the remote copy.
	Enabled bool
	// Namespace is the environment's namespace (TESTSHIP_NAMESPACE).
	Namespace string
	// RunID is the run's id (TESTSHIP_RUN_ID).
	RunID string
	// Environment is the JSON description of the deployed environment
	// (TESTSHIP_ENVIRONMENT, a secret).
	Environment string
	// Index and Count place this pod in its run (TESTSHIP_INDEX,
	// TESTSHIP_COUNT): 0 and 1 outside a multi-pod run.
	Index, Count int
}

// loadRemote reads the remote side's variables. With TESTSHIP_REMOTE=true
// the namespace must be set and valid (the Job sets both); without it the
// others are ignored.
func loadRemote(c *checker) Remote {
	r := Remote{Enabled: c.bool(RemoteFlag), Count: 1}
	if !r.Enabled {
		return r
	}
	if n, err := Int(PodCount, 1, MaxPods); err != nil {
		c.bad(PodCount, Get(PodCount), "", fmt.Sprintf("the number of pods of the run, 1 to %d, as the remote runner's Job sets it", MaxPods))
	} else if n > 0 {
		r.Count = int(n)
	}
	if i, err := Int(PodIndex, 0, MaxPods-1); err != nil || int(i) >= r.Count {
		c.bad(PodIndex, Get(PodIndex), "", fmt.Sprintf("the pod's index in the run, 0 to %s-1 (%d), as the remote runner's Job sets it", PodCount, r.Count-1))
	} else {
		r.Index = int(i)
	}
	r.Namespace, r.RunID, r.Environment = Get(RemoteNamespace), Get(RemoteRunID), Get(RemoteEnvironment)
	if r.Namespace == "" {
		c.bad(RemoteNamespace, "", "TESTSHIP_REMOTE=true but it is not set", "the environment's namespace; the remote runner's Job sets both")
	} else if err := ValidNamespace(r.Namespace); err != nil {
		c.bad(RemoteNamespace, r.Namespace, "", "a DNS label: the environment's namespace, as the remote runner's Job sets it")
	}
	return r
}
