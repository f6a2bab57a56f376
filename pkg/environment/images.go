package environment

import (
	"os"
	"strings"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/imagestate"
)

// ResolveImages gives each chart that has an image the value "image": from
// TESTSHIP_IMAGE_<CHART> when set, else from built (the image pipeline's
// apps by name, e.g. its state file), else nothing (the chart's default).
func ResolveImages(charts []config.ChartRef, built map[string]string) map[string]string {
	out := map[string]string{}
	for _, c := range charts {
		if v := strings.TrimSpace(os.Getenv(config.ImageVar(c.Name))); v != "" {
			out[c.Name] = v
		} else if v := built[c.Name]; v != "" {
			out[c.Name] = v
		}
	}
	return out
}

// StateImages reads the app images recorded by the image pipeline
// (<stateDir>/images.json), pinned by digest when pushed; see
// imagestate.Apps. No file means no images.
func StateImages(stateDir string) (map[string]string, error) {
	return imagestate.Apps(stateDir)
}
