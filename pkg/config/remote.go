package config

import (
	"os"
	"strings"
)

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
)

// IsRemote reports whether this process is the remote runner's copy of a
// test (TESTSHIP_REMOTE=true, set on the remote runner's Job).
func IsRemote() bool { return strings.EqualFold(os.Getenv(RemoteFlag), "true") }
