package environment

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testship/testship/pkg/config"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	helmtime "helm.sh/helm/v3/pkg/time"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestGenerateNamespace(t *testing.T) {
	cases := map[Origin]string{
		{Owner: "alice", Scope: "main"}:                     "ts-alice-main",
		{Owner: "Bob.Smith", Scope: "feature/Link_Store"}:   "ts-bob-smith-feature-link-store",
		{Owner: "dependabot[bot]", Scope: "run123456789-1"}: "ts-dependabot-bot-run123456789-1",
		{Owner: "x", Scope: "--"}:                           "ts-x",
	}
	for o, want := range cases {
		if got := GenerateNamespace(o); got != want {
			t.Errorf("GenerateNamespace(%+v) = %q, want %q", o, got, want)
		}
	}
	long := Origin{Owner: "someone-with-a-very-long-name", Scope: "a-branch-name-that-goes-on-and-on-and-on-forever"}
	a, b := GenerateNamespace(long), GenerateNamespace(Origin{Owner: long.Owner, Scope: long.Scope + "2"})
	for _, ns := range []string{a, b} {
		if err := config.ValidNamespace(ns); err != nil {
			t.Errorf("%q: %v", ns, err)
		}
	}
	if a == b {
		t.Errorf("long names collide: %s", a)
	}
	if GenerateNamespace(long) != a {
		t.Error("not deterministic")
	}
}

func TestChartValues(t *testing.T) {
	vals, err := chartValues("link", "reg/link:1", "link.message=hi,link.replicas=3,other.x=1", map[string]any{"replicas": 4})
	if err != nil {
		t.Fatal(err)
	}
	if vals["image"] != "reg/link:1" || vals["message"] != "hi" || vals["replicas"] != float64(4) {
		t.Errorf("values = %#v", vals)
	}
	if _, ok := vals["x"]; ok {
		t.Error("another chart's value leaked in")
	}
	// --set wins over the image from the pipeline.
	vals, _ = chartValues("link", "reg/link:1", "link.image=mine:2", nil)
	if vals["image"] != "mine:2" {
		t.Errorf("image = %v", vals["image"])
	}
	if _, err := chartValues("link", "", "link=scalar", nil); err == nil {
		t.Error("scalar chart value accepted")
	}
	if _, err := chartValues("link", "", "link.a[=1", nil); err == nil {
		t.Error("bad --set syntax accepted")
	}
}

func TestDigest(t *testing.T) {
	ch, err := loadEmbedded(chartsFS(), "link")
	if err != nil {
		t.Fatal(err)
	}
	v1 := map[string]any{"image": "a", "replicas": 2}
	d1 := Digest(ch, v1)
	if d1 != Digest(ch, map[string]any{"replicas": 2, "image": "a"}) {
		t.Error("digest depends on map order")
	}
	if d1 == Digest(ch, map[string]any{"image": "a", "replicas": 3}) {
		t.Error("digest ignores values")
	}
	ch2, _ := loadEmbedded(chartsFS(), "link")
	ch2.Templates[0].Data = append([]byte("# changed\n"), ch2.Templates[0].Data...)
	if d1 == Digest(ch2, v1) {
		t.Error("digest ignores templates")
	}
	ch3, _ := loadEmbedded(chartsFS(), "link")
	ch3.Values["replicas"] = 5
	if d1 == Digest(ch3, v1) {
		t.Error("digest ignores the chart's default values")
	}
	if len(d1) != 32 {
		t.Errorf("digest %q does not fit a label nicely", d1)
	}
}

func rel(status release.Status, digest string, age time.Duration) *release.Release {
	return &release.Release{Name: "link", Version: 3, Labels: map[string]string{LabelDigest: digest},
		Info: &release.Info{Status: status, LastDeployed: helmtime.Time{Time: time.Now().Add(-age)}}}
}

func TestDecide(t *testing.T) {
	cases := []struct {
		last *release.Release
		want Decision
	}{
		{nil, Install},
		{rel(release.StatusUninstalled, "d", 0), Install},
		{rel(release.StatusDeployed, "d", 0), UpToDate},
		{rel(release.StatusDeployed, "other", 0), Upgrade},
		{rel(release.StatusFailed, "d", 0), Upgrade},
		{rel(release.StatusSuperseded, "d", 0), Upgrade},
		{rel(release.StatusPendingUpgrade, "d", 0), Pending},
		{rel(release.StatusPendingInstall, "d", 0), Pending},
	}
	for _, c := range cases {
		if got := Decide(c.last, "d"); got != c.want {
			st := "none"
			if c.last != nil {
				st = c.last.Info.Status.String()
			}
			t.Errorf("Decide(%s) = %s, want %s", st, got, c.want)
		}
	}
}

func TestStalePending(t *testing.T) {
	if StalePending(rel(release.StatusPendingUpgrade, "d", time.Minute), time.Now(), 5*time.Minute) {
		t.Error("a fresh pending release is stale")
	}
	if !StalePending(rel(release.StatusPendingUpgrade, "d", time.Hour), time.Now(), 5*time.Minute) {
		t.Error("an hour-old pending release is not stale")
	}
	if StalePending(rel(release.StatusDeployed, "d", time.Hour), time.Now(), 5*time.Minute) {
		t.Error("a deployed release is stale-pending")
	}
}

// TestLinkChartRenders renders the embedded link chart offline and checks
// the objects the example relies on, and that the schema rejects bad values.
func TestLinkChartRenders(t *testing.T) {
	ch, err := loadEmbedded(chartsFS(), "link")
	if err != nil {
		t.Fatal(err)
	}
	in := action.NewInstall(&action.Configuration{})
	in.DryRun, in.ClientOnly, in.ReleaseName, in.Namespace = true, true, "link", "ns"
	in.KubeVersion = &chartutil.KubeVersion{Version: "v1.34.4", Major: "1", Minor: "34"}
	r, err := in.Run(ch, map[string]any{"image": "127.0.0.1:5000/testship/link:abc"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Deployment", "kind: Service", "kind: ConfigMap", "kind: Role", "name: link-store",
		"image: \"127.0.0.1:5000/testship/link:abc\"", "replicas: 2", "readinessProbe"} {
		if !strings.Contains(r.Manifest, want) {
			t.Errorf("manifest lacks %q", want)
		}
	}
	if ws := workloads(r.Manifest); len(ws) != 1 || ws[0] != (Workload{"Deployment", "link"}) {
		t.Errorf("workloads = %v", ws)
	}
	for _, bad := range []map[string]any{{"image": ""}, {"image": "x", "replicas": "two"}} {
		in := action.NewInstall(&action.Configuration{})
		in.DryRun, in.ClientOnly, in.ReleaseName, in.Namespace = true, true, "link", "ns"
		if _, err := in.Run(ch, bad); err == nil || !strings.Contains(err.Error(), "schema") {
			t.Errorf("values %v: err = %v, want a schema error", bad, err)
		}
	}
}

func TestPodProblem(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "link-1"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "link", Image: "reg/none:1"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "link",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}}}}
	msg, fatal := podProblem(p)
	if !fatal || !strings.Contains(msg, "ImagePullBackOff for image reg/none:1") || !strings.Contains(msg, "pod link-1 container link") {
		t.Errorf("podProblem = %q, %v", msg, fatal)
	}
	p.Status.ContainerStatuses[0].State.Waiting.Reason = "ErrImagePull"
	if _, fatal := podProblem(p); fatal {
		t.Error("a first ErrImagePull is fatal")
	}
	p.Status.ContainerStatuses[0] = corev1.ContainerStatus{Name: "link", RestartCount: 3,
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}}}
	if msg, fatal := podProblem(p); !fatal || !strings.Contains(msg, "last exit code 2") {
		t.Errorf("crash loop: %q, %v", msg, fatal)
	}
}

func TestResolveImages(t *testing.T) {
	got := ResolveImages([]config.ChartRef{{Name: "link"}, {Name: "db"}, {Name: "cache"}},
		map[string]string{"link": "override:1", "other": "x:1"}, map[string]string{"link": "built:1", "db": "built-db:1"})
	if got["link"] != "override:1" || got["db"] != "built-db:1" || got["cache"] != "" || len(got) != 2 {
		t.Errorf("ResolveImages = %v", got)
	}
}

func TestOptionsFromConfig(t *testing.T) {
	dir := t.TempDir()
	state := `{"apps":{"link":{"ref":"127.0.0.1:5000/testship/link:abc","digest":"sha256:` + strings.Repeat("a", 64) + `"},` +
		`"db":{"ref":"127.0.0.1:5000/testship/db:abc","digest":"sha256:` + strings.Repeat("b", 64) + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "images.json"), []byte(state), 0o644); err != nil {
		t.Fatal(err)
	}
	c := config.Env{Namespace: "ns1", Charts: []config.ChartRef{{Name: "link"}, {Name: "db"}}, Set: "link.a=1",
		Timeout: time.Minute, Images: map[string]string{"db": "postgres:16"}, Safety: config.EnvSafety{PodSecurity: "baseline"}}
	o, err := OptionsFromConfig(c, dir, "go-test")
	if err != nil {
		t.Fatal(err)
	}
	if o.Namespace != "ns1" || o.Set != "link.a=1" || o.Timeout != time.Minute || o.Safety.PodSecurity != "baseline" || len(o.Charts) != 2 {
		t.Errorf("options = %+v", o)
	}
	if want := "127.0.0.1:5000/testship/link@sha256:" + strings.Repeat("a", 64); o.Images["link"] != want {
		t.Errorf("link image = %q, want the state file's pinned %q", o.Images["link"], want)
	}
	if o.Images["db"] != "postgres:16" {
		t.Errorf("db image = %q, want TESTSHIP_IMAGE_DB's postgres:16", o.Images["db"])
	}
	if o.Origin.Trigger != "go-test" && !strings.HasPrefix(o.Origin.Trigger, "github-") {
		t.Errorf("trigger = %q", o.Origin.Trigger)
	}
	// No state file: no built images, not an error.
	o, err = OptionsFromConfig(config.Env{Charts: []config.ChartRef{{Name: "link"}}}, t.TempDir(), "local")
	if err != nil || len(o.Images) != 0 {
		t.Errorf("without a state file: %v, %v", o.Images, err)
	}
}

func TestCondense(t *testing.T) {
	blob := `"` + strings.Repeat(`{\"a\":1},`, 40) + `"`
	in := `cannot patch "link" with kind Deployment:  "" is invalid: patch: Invalid value: ` + blob + `: quantities must match`
	got := condense(in)
	if got != `cannot patch "link" with kind Deployment:  "" is invalid: patch: Invalid value: "<object elided>": quantities must match` {
		t.Errorf("condense = %s", got)
	}
}

func TestLoadChartSources(t *testing.T) {
	emb, src, err := loadChart(config.ChartRef{Name: "link"}, false, "charts")
	if err != nil || src != "embedded charts/link" {
		t.Fatalf("embedded: %v %s", err, src)
	}
	// LOCAL_CHARTS: found from the package directory upwards, same content.
	disk, src, err := loadChart(config.ChartRef{Name: "link"}, true, "charts")
	if err != nil || !strings.HasSuffix(src, "/charts/link") {
		t.Fatalf("local: %v %s", err, src)
	}
	if Digest(emb, nil) != Digest(disk, nil) {
		t.Error("embedded and on-disk link charts differ: rebuild (the embed is stale?)")
	}
	if _, _, err := loadChart(config.ChartRef{Name: "nope"}, false, "charts"); err == nil || !strings.Contains(err.Error(), "embedded: link") {
		t.Errorf("unknown embedded chart: %v", err)
	}
	if _, _, err := loadChart(config.ChartRef{Name: "x", Source: "https://charts.example.com"}, false, "charts"); err == nil {
		t.Error("repository source without #chart accepted")
	}
}

// Finish's keep branch says once how to remove the environment and touches
// no cluster (no client configuration at all here).
func TestFinishKeeps(t *testing.T) {
	var out strings.Builder
	c := config.Env{Keep: config.KeepOnFail, Timeout: time.Second}
	if err := Finish(context.Background(), nil, c, "ts-keep", true, &out); err != nil {
		t.Fatal(err)
	}
	msg := out.String()
	if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "keeping the environment in namespace ts-keep (KEEP_ENVIRONMENTS=onfail, test failed: true)") ||
		!strings.Contains(msg, "ENV_NAMESPACE=ts-keep mage env:destroy") {
		t.Errorf("Finish said %q", msg)
	}
}
