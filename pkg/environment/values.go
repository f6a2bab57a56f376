package environment

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/testship/testship/pkg/config"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/strvals"
)

// chartValues builds the values for one release, later sources winning:
// image (when known) < the chart's entry in set (Helm --set syntax whose
// first key is the chart) < extra.
func chartValues(release, image, set string, extra map[string]any) (map[string]any, error) {
	vals := map[string]any{}
	if image != "" {
		vals["image"] = image
	}
	if set != "" {
		all := map[string]any{}
		if err := strvals.ParseInto(set, all); err != nil {
			return nil, &config.Error{Name: config.EnvSet, Value: set, Want: "Helm --set syntax such as link.message=hi,link.replicas=3 (" + err.Error() + ")"}
		}
		if v, ok := all[release]; ok {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, &config.Error{Name: config.EnvSet, Value: set, Want: fmt.Sprintf("keys below the chart name, e.g. %s.replicas=3", release)}
			}
			vals = chartutil.MergeTables(m, vals)
		}
	}
	if extra != nil {
		vals = chartutil.MergeTables(deepCopy(extra), vals)
	}
	return vals, nil
}

func deepCopy(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

// Digest identifies what a deploy would install: the chart's metadata,
// templates, default values, schema and files (and its subcharts'), and the
// user-supplied values. Parsed content rather than raw files, so the same
// chart digests the same from disk, embedded or repackaged in a registry.
// Equal digests mean an upgrade would change nothing, so no new revision.
func Digest(ch *chart.Chart, vals map[string]any) string {
	h := sha256.New()
	put := func(kind, name string, data []byte) {
		fmt.Fprintf(h, "%s %q %d\n", kind, name, len(data))
		h.Write(data)
	}
	var walk func(c *chart.Chart)
	walk = func(c *chart.Chart) {
		meta, _ := json.Marshal(c.Metadata)
		put("chart", c.Name(), meta)
		files := append([]*chart.File(nil), c.Templates...)
		sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
		for _, f := range files {
			put("template", f.Name, f.Data)
		}
		defaults, _ := json.Marshal(c.Values)
		put("values", "", defaults)
		put("schema", "", c.Schema)
		files = append([]*chart.File(nil), c.Files...)
		sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
		for _, f := range files {
			put("file", f.Name, f.Data)
		}
		deps := append([]*chart.Chart(nil), c.Dependencies()...)
		sort.Slice(deps, func(i, j int) bool { return deps[i].Name() < deps[j].Name() })
		for _, d := range deps {
			walk(d)
		}
	}
	walk(ch)
	b, _ := json.Marshal(vals) // map keys are sorted: canonical
	put("user-values", "", b)
	// 32 hex digits fit a label value (max 63) and are plenty to compare.
	return hex.EncodeToString(h.Sum(nil))[:32]
}
