package config

import "strings"

// Variables of the CI targets (ci:*, test:all).
var (
	CIMode = Declare(Var{Name: "TESTSHIP_MODE", Default: "remote", Area: "ci",
		Help: "ci:remote: remote (push, run and wait), detached (push, start the run and return) or attach (follow TESTSHIP_CI_RUN to its end)"})
	CIRun = Declare(Var{Name: "TESTSHIP_CI_RUN", Area: "ci",
		Help: "a run id: the run ci:cleanup cancels (a job's run_id output), or the one ci:remote follows with TESTSHIP_MODE=attach"})
	CIKeepStack = Declare(Var{Name: "TESTSHIP_KEEP_STACK", Default: "false", Area: "ci",
		Help: "ci:e2e and test:all leave the local stack running at the end instead of taking it down"})
	CIStackLogs = Declare(Var{Name: "TESTSHIP_STACK_LOGS", Default: ".testship/stack-logs", Area: "ci",
		Help: "where ci:e2e copies the local stack's logs when a step failed (for upload as an artifact)"})
	CIEKSCluster = Declare(Var{Name: "TESTSHIP_EKS_CLUSTER", Area: "ci",
		Help: "ci:kubeconfig: the EKS cluster whose kubeconfig `aws eks update-kubeconfig` writes (empty: keep KUBECONFIG)"})
	CIRunnerTemp = Declare(Var{Name: "RUNNER_TEMP", Area: "ci",
		Help: "set by GitHub Actions: ci:kubeconfig writes the kubeconfig there (unset: TESTSHIP_STATE_DIR)"})
)

// Modes of ci:remote.
const (
	ModeRemote   = "remote"
	ModeDetached = "detached"
	ModeAttach   = "attach"
)

// CI is the validated configuration of the CI targets.
type CI struct {
	Mode      string
	Run       string
	KeepStack bool
	StackLogs string
	Cluster   string
	// KubeconfigDir is where ci:kubeconfig writes: RUNNER_TEMP, else
	// TESTSHIP_STATE_DIR.
	KubeconfigDir string
}

// LoadCI reads and validates the CI targets' variables (the ci area of
// Load).
func LoadCI() (CI, error) {
	c := &checker{}
	ci := loadCI(c)
	return ci, c.err()
}

func loadCI(c *checker) CI {
	ci := CI{Mode: strings.ToLower(Get(CIMode)), Run: Get(CIRun), StackLogs: Get(CIStackLogs), Cluster: Get(CIEKSCluster),
		KubeconfigDir: Get(CIRunnerTemp)}
	if ci.KubeconfigDir == "" {
		ci.KubeconfigDir = Get(StateDir)
	}
	switch ci.Mode {
	case ModeRemote, ModeDetached:
	case ModeAttach:
		if ci.Run == "" {
			c.bad(CIRun, ci.Run, "", "the id of the run to follow (TESTSHIP_MODE=attach), e.g. the run_id output of the job that started it")
		}
	default:
		c.bad(CIMode, ci.Mode, "", "remote, detached or attach")
	}
	ci.KeepStack = c.bool(CIKeepStack)
	return ci
}
