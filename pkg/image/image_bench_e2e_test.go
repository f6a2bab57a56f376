//go:build e2e

package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/testship/testship/internal/e2e"
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

// BenchmarkPushNoop is `image:push` with nothing changed: three registry
// lookups, a cached compile, no build, nothing uploaded.
func BenchmarkPushNoop(b *testing.B) {
	e2e.Docker(b)
	reg := startRegistry(b)
	dockerConfig(b, reg.host, reg.user, reg.pass)
	cfg := testConfig(b, reg.host, benchPackage(b))
	cfg.Apps = nil
	push(b, cfg)
	before := reg.Uploads()
	for b.Loop() {
		if _, err := Push(context.Background(), cfg, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(reg.Uploads()-before)/float64(b.N), "uploads/op")
}

// BenchmarkPushOneLineChange edits one line of the test package and pushes.
// Next to it, the floor: `go test -c` of the same edit plus uploading the
// new binary as one layer straight to the registry. x-floor is the ratio.
func BenchmarkPushOneLineChange(b *testing.B) {
	e2e.Docker(b)
	reg := startRegistry(b)
	dockerConfig(b, reg.host, reg.user, reg.pass)
	pkg := benchPackage(b)
	cfg := testConfig(b, reg.host, pkg)
	cfg.Apps = nil
	push(b, cfg)
	n := 0
	edit := func() { n++; editOneLine(b, pkg, n) }
	repo, _ := name.NewRepository(reg.host + "/floor/layer")
	auth := remote.WithAuth(&authn.Basic{Username: reg.user, Password: reg.pass})
	var pipeline, floor time.Duration
	for b.Loop() {
		b.StopTimer()
		edit()
		t0 := time.Now()
		bin := filepath.Join(b.TempDir(), "t")
		if err := compile(context.Background(), pkg, bin, cfg.OS(), cfg.Arch(), cfg.TestTags, true); err != nil {
			b.Fatal(err)
		}
		layer, err := tarball.LayerFromFile(bin)
		if err != nil {
			b.Fatal(err)
		}
		if err := remote.WriteLayer(repo, layer, auth); err != nil {
			b.Fatal(err)
		}
		floor += time.Since(t0)
		edit()
		b.StartTimer()
		t1 := time.Now()
		var out bytes.Buffer
		if _, err := Push(context.Background(), cfg, &out); err != nil {
			b.Fatalf("%v\n%s", err, out.String())
		}
		pipeline += time.Since(t1)
	}
	b.ReportMetric(floor.Seconds()/float64(b.N), "floor-s/op")
	b.ReportMetric(pipeline.Seconds()/floor.Seconds(), "x-floor")
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
