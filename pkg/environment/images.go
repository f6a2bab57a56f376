package environment

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/testship/testship/pkg/config"
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

// StateImages reads the app images recorded by the image pipeline (the
// "apps" of pkg/image's State in <stateDir>/images.json), pinned by digest
// when pushed. A relative stateDir is looked up from the working directory
// upwards (go test runs in the package directory). No file means no images.
// It reads the JSON itself so test binaries need not link the Docker and
// AWS clients of pkg/image.
func StateImages(stateDir string) (map[string]string, error) {
	p, err := findUp(filepath.Join(stateDir, "images.json"))
	if err != nil {
		return map[string]string{}, nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var st struct {
		Apps map[string]struct {
			Ref    string `json:"ref"`
			Digest string `json:"digest"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w; run `mage image:push` again", p, err)
	}
	out := map[string]string{}
	for name, r := range st.Apps {
		ref := r.Ref
		if r.Digest != "" && strings.LastIndex(ref, ":") > strings.LastIndex(ref, "/") {
			ref = ref[:strings.LastIndex(ref, ":")] + "@" + r.Digest
		}
		out[name] = ref
	}
	return out, nil
}
