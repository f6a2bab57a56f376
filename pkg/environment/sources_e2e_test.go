//go:build e2e

package environment_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/testship/testship/internal/testimage"
	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/environment"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/registry"
)

// TestChartFromOCI pushes the link chart to the local registry as an OCI
// artifact and deploys it from there; then from disk (LOCAL_CHARTS), which
// is the same chart, so up to date.
func TestChartFromOCI(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	image := testimage.Main(t, s.registry, "link", "./tests/link/cmd/link")

	ch, err := loader.Load(testimage.RepoRoot(t) + "/charts/link")
	if err != nil {
		t.Fatal(err)
	}
	tgz, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := registry.NewClient(registry.ClientOptPlainHTTP())
	if err != nil {
		t.Fatal(err)
	}
	ref := s.registry + "/testship-e2e/charts/link:" + ch.Metadata.Version
	if _, err := rc.Push(data, ref, registry.PushOptStrictMode(true)); err != nil {
		t.Fatalf("push chart %s: %v", ref, err)
	}

	ns := namespace(t, s, "ts-e2e-envoci")
	o := opts(ns, image, 3*time.Minute, t)
	o.Charts = []config.ChartRef{{Name: "link", Source: "oci://" + s.registry + "/testship-e2e/charts/link@" + ch.Metadata.Version}}
	env, err := environment.Deploy(ctx, s.rc, o)
	if err != nil {
		t.Fatalf("deploy from OCI: %v", err)
	}
	r := env.Release("link")
	if r.Revision != 1 || r.Source != "oci://"+s.registry+"/testship-e2e/charts/link@"+ch.Metadata.Version {
		t.Errorf("from OCI: %+v", r)
	}

	o = opts(ns, image, 3*time.Minute, t)
	o.LocalCharts = true
	env, err = environment.Deploy(ctx, s.rc, o)
	if err != nil {
		t.Fatalf("deploy from disk: %v", err)
	}
	if r := env.Release("link"); !r.UpToDate || r.Revision != 1 {
		t.Errorf("same chart from disk: %+v, want up to date at revision 1", r)
	}
}

// BenchmarkDeployUpToDate measures a deploy that finds everything up to
// date (history lookup, digest, readiness check): the cost of the remote
// copy's and every rerun's environment step.
func BenchmarkDeployUpToDate(b *testing.B) {
	s := setupB(b)
	image := testimage.Main(b, s.registry, "link", "./tests/link/cmd/link")
	ns := "ts-e2e-envbench"
	o := environment.Options{Namespace: ns, Charts: []config.ChartRef{{Name: "link"}}, Images: map[string]string{"link": image},
		Timeout: 3 * time.Minute, Origin: environment.Origin{Owner: "e2e", Commit: "bench", Trigger: "go-test", Scope: "bench"}}
	ctx := context.Background()
	b.Cleanup(func() { environment.Destroy(context.Background(), s.rc, ns, []string{"link"}, 3*time.Minute, nil) })
	if _, err := environment.Deploy(ctx, s.rc, o); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		env, err := environment.Deploy(ctx, s.rc, o)
		if err != nil || !env.Release("link").UpToDate {
			b.Fatalf("not up to date: %v", err)
		}
	}
}
