package config

import "os"

// Area is a part of the pipeline; each variable belongs to one.
type Area string

// The areas.
const (
	AreaImage Area = "image"
	AreaEnv   Area = "env"
	AreaRun   Area = "run"
	AreaDev   Area = "dev"
	AreaKube  Area = "kube"
	AreaCI    Area = "ci"
	// AreaRemote: what the remote runner's Job sets on its pod.
	AreaRemote Area = "remote"
	AreaBench  Area = "bench"
)

// The areas each kind of target checks before it does anything.
var (
	// ForAll: mage config.
	ForAll = []Area{AreaImage, AreaEnv, AreaRun, AreaDev, AreaKube, AreaCI, AreaRemote, AreaBench}
	// ForDev: dev:*.
	ForDev = []Area{AreaDev}
	// ForImage: image:*.
	ForImage = []Area{AreaImage}
	// ForEnv: env:* (the image area for the state file's directory).
	ForEnv = []Area{AreaEnv, AreaImage, AreaKube}
	// ForRun: run:remote, run:detached, run:local.
	ForRun = []Area{AreaRun, AreaEnv, AreaImage, AreaKube}
	// ForRuns: run:attach, run:logs, run:status, run:list, run:cancel.
	ForRuns = []Area{AreaRun, AreaEnv, AreaKube}
	// ForTest: the in-test library (testenv.New), which runs in the test
	// package's directory and inside the remote pod, where the image
	// pipeline's paths do not exist and the cluster is the pod's.
	ForTest = []Area{AreaEnv, AreaRun, AreaRemote}
	// ForCIRemote: ci:remote (what run:remote checks, and the CI mode).
	ForCIRemote = []Area{AreaCI, AreaRun, AreaEnv, AreaImage, AreaKube}
	// ForCIStack: ci:e2e and test:all (the local stack and the images).
	ForCIStack = []Area{AreaCI, AreaDev, AreaImage}
	// ForBench: mage bench.
	ForBench = []Area{AreaBench}
	// ForCICleanup: ci:cleanup and ci:kubeconfig.
	ForCICleanup = []Area{AreaCI, AreaEnv}
)

// Config is the validated configuration of the areas Load checked (the
// others are zero).
type Config struct {
	Image Image
	Env   Env
	Run   Run
	Dev   Dev
	CI    CI
	// Remote: the remote runner's pod's variables (testenv).
	Remote Remote
	Bench  Bench
}

// Load is the validation pass every target runs before any work: it reads
// every variable of the given areas (all when none are given), checks each
// on its own and against the others, and returns every problem at once in
// an *Errors (exit status 89), each naming the variable, its value
// (redacted when secret) and what would be right. In GitHub Actions it
// first asks the runner to mask every secret value.
func Load(areas ...Area) (*Config, error) {
	MaskInActions(os.Stdout)
	if len(areas) == 0 {
		areas = ForAll
	}
	want := map[Area]bool{}
	for _, a := range areas {
		want[a] = true
	}
	c := &checker{}
	cfg := &Config{}
	if want[AreaImage] {
		cfg.Image = loadImage(c)
	}
	if want[AreaEnv] {
		cfg.Env = loadEnv(c)
	}
	if want[AreaRun] {
		cfg.Run = loadRun(c)
	}
	if want[AreaDev] {
		cfg.Dev = loadDev(c)
	}
	if want[AreaCI] {
		cfg.CI = loadCI(c)
	}
	if want[AreaKube] {
		checkKube(c)
	}
	if want[AreaRemote] {
		cfg.Remote = loadRemote(c)
	}
	if want[AreaBench] {
		cfg.Bench = loadBench(c)
	}
	return cfg, c.err()
}
