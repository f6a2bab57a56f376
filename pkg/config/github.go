package config

// Variables GitHub Actions sets on a step (area "github"): testship reads
// them, a user never sets them.
var (
	GitHubActions = Declare(Var{Name: "GITHUB_ACTIONS", Area: "github",
		Help: "set by GitHub Actions to true: annotations, secret masking, outputs and the job summary are written"})
	GitHubOutput = Declare(Var{Name: "GITHUB_OUTPUT", Area: "github",
		Help: "set by GitHub Actions: the step's outputs file (image:push, env:deploy and run:* write to it)"})
	GitHubStepSummary = Declare(Var{Name: "GITHUB_STEP_SUMMARY", Area: "github",
		Help: "set by GitHub Actions: the job summary file (run:* and ci:remote append the test results)"})
	GitHubEnv = Declare(Var{Name: "GITHUB_ENV", Area: "github",
		Help: "set by GitHub Actions: variables for the job's later steps (ci:kubeconfig exports KUBECONFIG there)"})
	GitHubActor = Declare(Var{Name: "GITHUB_ACTOR", Area: "github",
		Help: "set by GitHub Actions: the environment's owner label and generated namespace"})
	GitHubSHA = Declare(Var{Name: "GITHUB_SHA", Area: "github",
		Help: "set by GitHub Actions: the commit label of the environment's namespace"})
	GitHubEventName = Declare(Var{Name: "GITHUB_EVENT_NAME", Area: "github",
		Help: "set by GitHub Actions: the trigger label of the environment's namespace (github-<event>)"})
	GitHubRunID = Declare(Var{Name: "GITHUB_RUN_ID", Area: "github",
		Help: "set by GitHub Actions: with GITHUB_RUN_ATTEMPT, what makes a CI run's generated namespace its own"})
	GitHubRunAttempt = Declare(Var{Name: "GITHUB_RUN_ATTEMPT", Area: "github",
		Help: "set by GitHub Actions: see GITHUB_RUN_ID"})
)

// InActions reports whether the process runs as a GitHub Actions step
// (GITHUB_ACTIONS=true).
func InActions() bool { return Get(GitHubActions) == "true" }
