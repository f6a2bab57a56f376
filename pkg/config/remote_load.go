package config

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
}

// loadRemote reads the remote side's variables. With TESTSHIP_REMOTE=true
// the namespace must be set and valid (the Job sets both); without it the
// others are ignored.
func loadRemote(c *checker) Remote {
	r := Remote{Enabled: c.bool(RemoteFlag)}
	if !r.Enabled {
		return r
	}
	r.Namespace, r.RunID, r.Environment = Get(RemoteNamespace), Get(RemoteRunID), Get(RemoteEnvironment)
	if r.Namespace == "" {
		c.bad(RemoteNamespace, "", "TESTSHIP_REMOTE=true but it is not set", "the environment's namespace; the remote runner's Job sets both")
	} else if err := ValidNamespace(r.Namespace); err != nil {
		c.bad(RemoteNamespace, r.Namespace, "", "a DNS label: the environment's namespace, as the remote runner's Job sets it")
	}
	return r
}
