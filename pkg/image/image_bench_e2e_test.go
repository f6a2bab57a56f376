//go:build e2e

package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"

	"github.com/testship/testship/images"
	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/pkg/config"
)

// benchPackage is the test package benchmarks put into images: a copy of
// the fixture, or of BENCH_TEST_PACKAGE (e.g. ./tests/link, from the repo
// root; its Go files are copied, so it must be a single directory).
func benchPackage(b *testing.B) string {
	src := os.Getenv("BENCH_TEST_PACKAGE")
	if src == "" {
		return fixture(b)
	}
	dir := filepath.Join("testdata", "run-"+randHex(4))
	os.MkdirAll(dir, 0o755)
	b.Cleanup(func() { os.RemoveAll(dir) })
	files, _ := filepath.Glob(filepath.Join("..", "..", src, "*.go"))
	if len(files) == 0 {
		b.Fatalf("BENCH_TEST_PACKAGE=%s: no Go files", src)
	}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644)
	}
	return "./" + dir
}

var packageClause = regexp.MustCompile(`(?m)^package (\w+)`)

// editOneLine writes a one-line change into pkg's test binary: a file
// whose single string ends up in the binary.
func editOneLine(b *testing.B, pkg string, n int) {
	files, _ := filepath.Glob(filepath.Join(pkg, "*_test.go"))
	src, _ := os.ReadFile(files[0])
	name := packageClause.FindSubmatch(src)[1]
	body := fmt.Sprintf("package %s\n\nvar benchVersion string\n\nfunc init() { benchVersion = \"bench-%d-%d\" }\n", name, time.Now().UnixNano(), n)
	if err := os.WriteFile(filepath.Join(pkg, "zz_benchversion_test.go"), []byte(body), 0o644); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPushNoop is `image:push` with nothing changed since the last
// push: registry lookups, no compile (the binary's stamp shows its inputs
// unchanged), no build, nothing uploaded. Next to it, a cached `go test -c`
// of the same package alone; x-cached-compile is the ratio (target ≤ 1).
// compiles/op counts the pushes that ran go (0 when every stamp held).
//
// Also measured in the same iterations: the push when the stamp cannot
// vouch (removed, as after an edit anywhere in the module that leaves the
// binary the same): go runs, finds the binary up to date, and the binary
// is hashed again. x-cached-compile-unstamped is its ratio.
func BenchmarkPushNoop(b *testing.B) {
	e2e.Docker(b)
	reg := startRegistry(b)
	dockerConfig(b, reg.host, reg.user, reg.pass)
	cfg := testConfig(b, reg.host, benchPackage(b))
	cfg.Apps = nil
	push(b, cfg)
	// The package's files were copied a moment before the first push, too
	// recently for its compile to be stamped (uptodate.go, racyWindow):
	// the next push runs go once more and stamps the binary, as any
	// push does once the files are a few seconds old.
	time.Sleep(racyWindow)
	push(b, cfg)
	before := reg.Uploads()
	// A cached `go test -c`: the package compiled, the binary already at
	// its output path (go then only checks its build ID, as the pipeline's
	// compile does).
	cached := filepath.Join(b.TempDir(), "t")
	if err := compile(context.Background(), cfg.TestPackage, cached, cfg.OS(), cfg.Arch(), cfg.TestTags, true); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(cfg.StateDir, "build", cfg.OS()+"-"+cfg.Arch(), "test")
	var compiled, pushed, unstamped time.Duration
	compiles := 0
	for b.Loop() {
		b.StopTimer()
		t0 := time.Now()
		if err := compile(context.Background(), cfg.TestPackage, cached, cfg.OS(), cfg.Arch(), cfg.TestTags, true); err != nil {
			b.Fatal(err)
		}
		compiled += time.Since(t0)
		b.StartTimer()
		t1 := time.Now()
		var out bytes.Buffer
		if _, err := Push(context.Background(), cfg, &out); err != nil {
			b.Fatal(err)
		}
		pushed += time.Since(t1)
		b.StopTimer()
		if !strings.Contains(out.String(), "up to date (no input changed since the last compile)") {
			compiles++
		}
		if err := os.Remove(bin + stampSuffix); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, err := Push(context.Background(), cfg, io.Discard); err != nil {
			b.Fatal(err)
		}
		unstamped += time.Since(t2)
		b.StartTimer()
	}
	b.ReportMetric(float64(reg.Uploads()-before)/float64(b.N), "uploads/op")
	b.ReportMetric(float64(compiles)/float64(b.N), "compiles/op")
	b.ReportMetric(compiled.Seconds()/float64(b.N), "cached-compile-s/op")
	b.ReportMetric(pushed.Seconds()/compiled.Seconds(), "x-cached-compile")
	b.ReportMetric(unstamped.Seconds()/float64(b.N), "unstamped-s/op")
	b.ReportMetric(unstamped.Seconds()/compiled.Seconds(), "x-cached-compile-unstamped")
}

// BenchmarkPushOneLineChange edits one line of the test package and pushes
// (the pipeline with the builder of TESTSHIP_IMAGE_BUILDER, direct by
// default). Next to it, measured in the same run on the same base and
// registry, two yardsticks, each after its own one-line edit:
//   - crane: `go test -c` + go-containerregistry's crane.Append of the
//     binary's layer onto the base + crane.Push (in-process);
//   - docker: `go test -c && docker build && docker push` with the docker
//     CLI and images/test/Dockerfile.
//
// x-crane and x-docker are the pipeline's time over theirs. The compile,
// common to all three, is the bulk of it and varies with the machine's
// load; *-after-compile-s/op are the times from the binary to the image in
// the registry (the pipeline's compile as it reports it).
func BenchmarkPushOneLineChange(b *testing.B) {
	e2e.Docker(b)
	reg := startRegistry(b)
	dockerConfig(b, reg.host, reg.user, reg.pass)
	pkg := benchPackage(b)
	cfg := testConfig(b, reg.host, pkg)
	cfg.Apps = nil
	st, _ := push(b, cfg)
	n := 0
	edit := func() { n++; editOneLine(b, pkg, n) }
	auth := crane.WithAuth(&authn.Basic{Username: reg.user, Password: reg.pass})
	base, err := crane.Pull(st.Base.Pinned(), auth)
	if err != nil {
		b.Fatal(err)
	}
	ctxDir := b.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), images.Test, 0o644)
	docker := func(args ...string) {
		cmd := exec.Command("docker", args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var pipeline, craneT, dockerT, pipeC, craneC, dockerC time.Duration
	compileLine := regexp.MustCompile(`(?m)^test\s+go test -c \S+ \((\d+\.\d+)s\)`)
	for b.Loop() {
		b.StopTimer()
		edit()
		t0 := time.Now()
		bin := filepath.Join(b.TempDir(), "t")
		if err := compile(context.Background(), pkg, bin, cfg.OS(), cfg.Arch(), cfg.TestTags, true); err != nil {
			b.Fatal(err)
		}
		craneC += time.Since(t0)
		layerTar := filepath.Join(b.TempDir(), "layer.tar")
		f, _ := os.Create(layerTar)
		if err := writeBinaryTar(f, bin); err != nil {
			b.Fatal(err)
		}
		f.Close()
		img, err := crane.Append(base, layerTar)
		if err != nil {
			b.Fatal(err)
		}
		if err := crane.Push(img, fmt.Sprintf("%s/%s/crane:%d", reg.host, cfg.Repository, n), auth); err != nil {
			b.Fatal(err)
		}
		craneT += time.Since(t0)

		edit()
		t1 := time.Now()
		if err := compile(context.Background(), pkg, filepath.Join(ctxDir, "run"), cfg.OS(), cfg.Arch(), cfg.TestTags, true); err != nil {
			b.Fatal(err)
		}
		dockerC += time.Since(t1)
		ref := fmt.Sprintf("%s/%s/docker:%d", reg.host, cfg.Repository, n)
		docker("build", "-q", "--build-arg", "BASE_IMAGE="+st.Base.Ref, "-t", ref, ctxDir)
		docker("push", "-q", ref)
		dockerT += time.Since(t1)

		edit()
		b.StartTimer()
		t2 := time.Now()
		var out bytes.Buffer
		if _, err := Push(context.Background(), cfg, &out); err != nil {
			b.Fatalf("%v\n%s", err, out.String())
		}
		pipeline += time.Since(t2)
		m := compileLine.FindStringSubmatch(out.String())
		if m == nil {
			b.Fatalf("no compile time in the output:\n%s", out.String())
		}
		secs, _ := time.ParseDuration(m[1] + "s")
		pipeC += secs
	}
	after := func(total, comp time.Duration) float64 { return (total - comp).Seconds() / float64(b.N) }
	b.ReportMetric(after(pipeline, pipeC), "pipeline-after-compile-s/op")
	b.ReportMetric(after(craneT, craneC), "crane-after-compile-s/op")
	b.ReportMetric(after(dockerT, dockerC), "docker-after-compile-s/op")
	b.ReportMetric(craneT.Seconds()/float64(b.N), "crane-s/op")
	b.ReportMetric(dockerT.Seconds()/float64(b.N), "docker-s/op")
	b.ReportMetric(pipeline.Seconds()/craneT.Seconds(), "x-crane")
	b.ReportMetric(pipeline.Seconds()/dockerT.Seconds(), "x-docker")
}

// BenchmarkPushCold pushes every image (base, test, app) to an empty
// registry, binaries already compiled and the base already built; next to
// it the same with the Engine builder (docker build + push of test and
// app). x-engine is the ratio.
func BenchmarkPushCold(b *testing.B) {
	e2e.Docker(b)
	pkg := benchPackage(b)
	var direct, engine time.Duration
	for b.Loop() {
		b.StopTimer()
		reg := startRegistry(b)
		dockerConfig(b, reg.host, reg.user, reg.pass)
		cfg := testConfig(b, reg.host, pkg)
		cfg.Apps = []config.App{{Name: "app", Package: "./testdata/fixture/cmd/app"}}
		t0 := time.Now()
		if _, err := BuildWith(context.Background(), cfg, config.ImageBuild{Builder: "engine", Compression: Gzip}, StagePush, io.Discard); err != nil {
			b.Fatal(err)
		}
		engine += time.Since(t0)
		reg2 := startRegistry(b)
		dockerConfig(b, reg2.host, reg2.user, reg2.pass)
		cfg2 := testConfig(b, reg2.host, pkg)
		cfg2.Apps = cfg.Apps
		b.StartTimer()
		t1 := time.Now()
		if _, err := BuildWith(context.Background(), cfg2, config.ImageBuild{Builder: "direct", Compression: Gzip}, StagePush, io.Discard); err != nil {
			b.Fatal(err)
		}
		direct += time.Since(t1)
	}
	b.ReportMetric(engine.Seconds()/float64(b.N), "engine-s/op")
	b.ReportMetric(direct.Seconds()/engine.Seconds(), "x-engine")
}

// BenchmarkTestImageSize reports the test image's size next to the test
// binary's: the base adds only a CA bundle, two small files and /tmp.
func BenchmarkTestImageSize(b *testing.B) {
	e2e.Docker(b)
	reg := startRegistry(b)
	dockerConfig(b, reg.host, reg.user, reg.pass)
	cfg := testConfig(b, reg.host, benchPackage(b))
	cfg.Apps = nil
	st, _ := push(b, cfg)
	engine, err := Connect(context.Background(), io.Discard, "plain")
	if err != nil {
		b.Fatal(err)
	}
	defer engine.Close()
	pullToEngine(b, engine, reg, st.Test.Ref)
	var size int64
	for b.Loop() {
		if size, err = engine.Size(context.Background(), st.Test.Ref); err != nil {
			b.Fatal(err)
		}
	}
	fi, err := os.Stat(filepath.Join(cfg.StateDir, "build", filepath.Base(cfg.OS()+"-"+cfg.Arch()), "test"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(size)/1e6, "image-MB")
	b.ReportMetric(float64(fi.Size())/1e6, "binary-MB")
	b.ReportMetric(float64(size-fi.Size())/1e6, "overhead-MB")
}
