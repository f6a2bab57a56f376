//go:build e2e

package image

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/internal/syncio"
	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/runner"
)

// These tests push to the local stack's registry (the cluster's node pulls
// from it) and run the images as the remote runner does: a Job.

func stackConfig(t *testing.T) config.Image {
	e2e.Docker(t)
	host := e2e.Registry(t)
	setenv(t, "DOCKER_CONFIG", t.TempDir()) // the stack's registry needs no credentials
	cfg := testConfig(t, host, fixture(t))
	cfg.Repository = "testship-image-e2e/" + randHex(3)
	cfg.Apps = nil
	return cfg
}

func pushWith(t *testing.T, cfg config.Image, b config.ImageBuild) (*State, string) {
	t.Helper()
	var out bytes.Buffer
	st, err := BuildWith(context.Background(), cfg, b, StagePush, &out)
	if err != nil {
		t.Fatalf("push (%s builder): %v\n%s", b.Builder, err, out.String())
	}
	return st, out.String()
}

type clusterRun struct {
	code int
	out  string
}

// clusterNamespace makes a namespace for the test, deleted at its end.
func clusterNamespace(t *testing.T) (kubernetes.Interface, string) {
	rc, err := clientcmd.BuildConfigFromFlags("", e2e.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ns := "testship-image-e2e-" + randHex(3)
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	return cs, ns
}

// runOnCluster runs image as a Job with the remote runner and returns the
// test's exit code and output.
func runOnCluster(t *testing.T, cs kubernetes.Interface, ns, image string, env map[string]string, args ...string) clusterRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, log syncio.Buffer
	run, err := runner.Launch(ctx, cs, runner.Options{Namespace: ns, Image: image, Test: "fixture", Args: args, Env: env,
		Timeout: 2 * time.Minute, TTL: time.Hour, NewRun: true,
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")}},
	}, &log)
	if err != nil {
		t.Fatalf("launch %s: %v", image, err)
	}
	_, err = runner.Follow(ctx, cs, run, runner.FollowOptions{WaitOptions: runner.WaitOptions{Out: &out, Log: &log}})
	code := 0
	var ee *runner.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitStatus()
	case err != nil:
		t.Fatalf("run %s: %v\nlog:\n%s", image, err, log.String())
	}
	return clusterRun{code: code, out: out.String()}
}

var durations = regexp.MustCompile(`\(\d+\.\d+s\)|\t\d+\.\d+s`)

// TestDirectAndEngineBuildersRunAlike pushes the same test package with
// both builders, checks the direct push/no-op/change cycle, pulls both
// back through the cluster and runs them: same exit code, same output.
func TestDirectAndEngineBuildersRunAlike(t *testing.T) {
	cfg := stackConfig(t)
	direct := config.ImageBuild{Builder: "direct", Compression: Gzip}
	engine := config.ImageBuild{Builder: "engine", Compression: Gzip}

	d1, out := pushWith(t, cfg, direct)
	if !strings.Contains(out, "test  pushed "+d1.Test.Ref+"@"+d1.Test.Digest) || !strings.Contains(out, "gzip layer on the base") {
		t.Fatalf("direct push output:\n%s", out)
	}
	d2, out := pushWith(t, cfg, direct)
	if d2.Test != d1.Test || strings.Count(out, "up to date (in the registry") != 2 || strings.Contains(out, "pushing") {
		t.Fatalf("direct re-push was not a no-op:\n%s", out)
	}
	e1, out := pushWith(t, cfg, engine)
	if e1.Base != d1.Base || e1.Test.Ref == d1.Test.Ref || !strings.Contains(out, "test  built") {
		t.Fatalf("engine builder: base %v vs %v, test %s vs %s\n%s", e1.Base, d1.Base, e1.Test.Ref, d1.Test.Ref, out)
	}

	cs, ns := clusterNamespace(t)
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"passes in the image", map[string]string{"FIXTURE_IN_IMAGE": "1"}, []string{"-test.v"}, 0},
		{"bad flag", nil, []string{"-test.bogus"}, 2},
	} {
		rd := runOnCluster(t, cs, ns, d1.Test.Pinned(), c.env, c.args...)
		re := runOnCluster(t, cs, ns, e1.Test.Pinned(), c.env, c.args...)
		if rd.code != c.code || re.code != c.code {
			t.Fatalf("%s: exit codes direct %d, engine %d, want %d\ndirect:\n%s\nengine:\n%s", c.name, rd.code, re.code, c.code, rd.out, re.out)
		}
		if durations.ReplaceAllString(rd.out, "") != durations.ReplaceAllString(re.out, "") {
			t.Fatalf("%s: outputs differ\ndirect:\n%s\nengine:\n%s", c.name, rd.out, re.out)
		}
		if c.code == 0 && !strings.Contains(rd.out, "fixture v1") {
			t.Fatalf("%s: output:\n%s", c.name, rd.out)
		}
	}

	// A one-line change: a new direct image, the base untouched; it runs.
	src := filepath.Join(cfg.TestPackage, "fixture_test.go")
	b, _ := os.ReadFile(src)
	os.WriteFile(src, bytes.Replace(b, []byte(`"v1"`), []byte(`"v2"`), 1), 0o644)
	d3, out := pushWith(t, cfg, direct)
	if d3.Test.Ref == d1.Test.Ref || d3.Base != d1.Base || !strings.Contains(out, "base  "+d1.Base.Ref+" up to date") {
		t.Fatalf("change:\n%s", out)
	}
	if r := runOnCluster(t, cs, ns, d3.Test.Pinned(), map[string]string{"FIXTURE_IN_IMAGE": "1"}, "-test.v"); r.code != 0 || !strings.Contains(r.out, "fixture v2") {
		t.Fatalf("changed image exited %d:\n%s", r.code, r.out)
	}
}

// TestMultiPlatformIndex pushes linux/amd64 and linux/arm64 images under
// one index per image; the amd64 node pulls the index and runs its own.
func TestMultiPlatformIndex(t *testing.T) {
	cfg := stackConfig(t)
	cfg.Platform = "linux/amd64,linux/arm64"
	st, out := pushWith(t, cfg, config.ImageBuild{Builder: "direct", Compression: Gzip})
	if !strings.Contains(out, "test linux/arm64 go test -c") || !strings.Contains(out, "(index of 2 platforms)") {
		t.Fatalf("output:\n%s", out)
	}
	for _, r := range []Ref{st.Base, st.Test} {
		ref, _ := name.ParseReference(r.Pinned())
		idx, err := remote.Index(ref)
		if err != nil {
			t.Fatalf("%s is not an index: %v", r.Pinned(), err)
		}
		im, _ := idx.IndexManifest()
		var got []string
		for _, m := range im.Manifests {
			got = append(got, m.Platform.OS+"/"+m.Platform.Architecture)
			img, err := idx.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cf, _ := img.ConfigFile()
			if r.Name == "test" && cf.Architecture != m.Platform.Architecture {
				t.Fatalf("%s: config says %s, index %s", r.Name, cf.Architecture, m.Platform.Architecture)
			}
			if r.Name == "test" {
				want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[m.Platform.Architecture]
				if got := binaryMachine(t, img); got != want {
					t.Fatalf("%s image: binary is %v, want %v", m.Platform.Architecture, got, want)
				}
			}
		}
		if strings.Join(got, ",") != "linux/amd64,linux/arm64" {
			t.Fatalf("%s index lists %v", r.Name, got)
		}
	}
	// Again: nothing to do.
	_, out = pushWith(t, cfg, config.ImageBuild{Builder: "direct", Compression: Gzip})
	if strings.Contains(out, "pushing") || strings.Count(out, "up to date (in the registry") != 6 {
		t.Fatalf("multi-platform no-op:\n%s", out)
	}
	cs, ns := clusterNamespace(t)
	r := runOnCluster(t, cs, ns, st.Test.Pinned(), map[string]string{"FIXTURE_IN_IMAGE": "1"}, "-test.v")
	if r.code != 0 || !strings.Contains(r.out, "goarch amd64") {
		t.Fatalf("index on the amd64 node: exit %d\n%s", r.code, r.out)
	}
}

// binaryMachine reads the ELF machine of /testship/run in img.
func binaryMachine(t *testing.T, img v1.Image) elf.Machine {
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no testship/run in the last layer: %v", err)
		}
		if h.Name == "testship/run" {
			b, _ := io.ReadAll(tr)
			f, err := elf.NewFile(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			return f.Machine
		}
	}
}

// TestDirectPushWithoutEngine: once the base is in the registry, a direct
// push needs no Docker Engine; a missing base without one says what to do.
func TestDirectPushWithoutEngine(t *testing.T) {
	cfg := stackConfig(t)
	pushWith(t, cfg, config.ImageBuild{Builder: "direct", Compression: Gzip})
	setenv(t, "DOCKER_HOST", "unix:///nonexistent/docker.sock")
	src := filepath.Join(cfg.TestPackage, "fixture_test.go")
	b, _ := os.ReadFile(src)
	os.WriteFile(src, bytes.Replace(b, []byte(`"v1"`), []byte(`"v3"`), 1), 0o644)
	st, out := pushWith(t, cfg, config.ImageBuild{Builder: "direct", Compression: Gzip})
	if !strings.Contains(out, "test  pushed") || st.Test.Digest == "" {
		t.Fatalf("push without the Engine:\n%s", out)
	}
	cfg.Repository += "-fresh"
	var buf bytes.Buffer
	_, err := BuildWith(context.Background(), cfg, config.ImageBuild{Builder: "direct", Compression: Gzip}, StagePush, &buf)
	if err == nil || !strings.Contains(err.Error(), "base image "+cfg.Registry+"/"+cfg.Repository+"/base:") || !strings.Contains(err.Error(), "is not in the registry") || !strings.Contains(err.Error(), "DOCKER_HOST") {
		t.Fatalf("want the missing base named with what to do, got %v", err)
	}
}
