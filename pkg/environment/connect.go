package environment

import (
	"context"
	"fmt"
	"strings"

	"helm.sh/helm/v3/pkg/release"
	"k8s.io/client-go/rest"
)

// Connect finds an environment already deployed in ns and deploys nothing:
// what the remote runner's copy of a test does. Each named chart must have a
// deployed release there. It needs to read Secrets (Helm's release records)
// in the namespace.
func Connect(ctx context.Context, rc *rest.Config, ns string, charts []string) (*Environment, error) {
	cfg, err := helmConfig(rc, ns, nil)
	if err != nil {
		return nil, err
	}
	rels, err := listReleases(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to environment in namespace %s: list releases: %w", ns, err)
	}
	byName := map[string]*release.Release{}
	for _, r := range rels {
		byName[r.Name] = r
	}
	env := &Environment{Namespace: ns}
	var missing []string
	for _, name := range charts {
		rel := byName[name]
		if rel == nil || rel.Info.Status != release.StatusDeployed {
			state := "not installed"
			if rel != nil {
				state = rel.Info.Status.String()
			}
			missing = append(missing, name+" ("+state+")")
			continue
		}
		env.Releases = append(env.Releases, Release{Name: name, Chart: rel.Chart.Metadata.Name, ChartVersion: rel.Chart.Metadata.Version,
			Revision: rel.Version, Status: rel.Info.Status.String(), Digest: rel.Labels[LabelDigest], UpToDate: true})
	}
	if len(missing) > 0 {
		return env, fmt.Errorf("connect to environment in namespace %s: no deployed release for %s; deploy it first (mage env:deploy with ENV_NAMESPACE=%s)",
			ns, strings.Join(missing, ", "), ns)
	}
	return env, nil
}
