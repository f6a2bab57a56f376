package environment

import (
	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/imagestate"
)

// OptionsFromConfig is the one way from the validated configuration to
// deploy options, used by env:deploy, run:* (pkg/pipeline) and the in-test
// form (testenv): the environment variables (config.Env), the origin
// detected for trigger ("local", "go-test"), and each chart's image from
// TESTSHIP_IMAGE_<CHART>, else the image pipeline's state file in stateDir
// (imagestate.Apps; no file means no images). Out, Debug and Values are
// the caller's.
func OptionsFromConfig(c config.Env, stateDir, trigger string) (Options, error) {
	built, err := imagestate.Apps(stateDir)
	if err != nil {
		return Options{}, err
	}
	return Options{Namespace: c.Namespace, Charts: c.Charts, LocalCharts: c.LocalCharts, ChartsDir: c.ChartsDir,
		Images: ResolveImages(c.Charts, c.Images, built), Set: c.Set, Timeout: c.Timeout,
		Origin: DetectOrigin(trigger), Safety: c.Safety}, nil
}

// ResolveImages gives each chart that has an image the value "image": from
// set (TESTSHIP_IMAGE_<CHART>, config.Env.Images) when there, else from
// built (the image pipeline's apps by name), else nothing (the chart's
// default).
func ResolveImages(charts []config.ChartRef, set, built map[string]string) map[string]string {
	out := map[string]string{}
	for _, c := range charts {
		if v := set[c.Name]; v != "" {
			out[c.Name] = v
		} else if v := built[c.Name]; v != "" {
			out[c.Name] = v
		}
	}
	return out
}
