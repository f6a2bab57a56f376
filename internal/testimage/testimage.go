// Package testimage builds small images for end-to-end tests without a
// Docker Engine: a static Go binary at /testship/run (the layout of the
// image pipeline's images) and, in test images, testship's entrypoint at
// /testship/entrypoint (as the base image has it: the runner's Job starts
// it), a writable /tmp, user 65532, pushed to the local registry with
// go-containerregistry.
package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/testship/testship/pkg/imageref"
)

// RepoRoot returns the module root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("testimage: go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// Main builds the Go main package pkg (relative to the module root) into
// an image <registry>/testship-e2e/<repo>:<content hash> and returns its
// reference.
func Main(t testing.TB, registry, repo, pkg string) string {
	t.Helper()
	return build(t, registry, repo, []string{"build", "-trimpath", "-o"}, pkg, nil, nil)
}

// EntrypointPackage is testship's entrypoint, which test images carry at
// /testship/entrypoint.
const EntrypointPackage = "./cmd/testship-entrypoint"

// entrypoint compiles testship's entrypoint once per test process.
var entrypoint struct {
	sync.Mutex
	bin []byte
}

func entrypointBinary(t testing.TB) []byte {
	t.Helper()
	entrypoint.Lock()
	defer entrypoint.Unlock()
	if entrypoint.bin == nil {
		bin := filepath.Join(t.TempDir(), "entrypoint")
		cmd := exec.Command("go", "build", "-trimpath", "-o", bin, EntrypointPackage)
		cmd.Dir = RepoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("testimage: build the entrypoint %s: %v\n%s", EntrypointPackage, err, out)
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		entrypoint.bin = data
	}
	return entrypoint.bin
}

// Test compiles the test package pkg with `go test -c` (and the given build
// tags) into an image whose entrypoint is the test binary, with testship's
// entrypoint at /testship/entrypoint beside it; it also returns the
// binary's path on the host.
func Test(t testing.TB, registry, repo, pkg string, tags ...string) (ref, binary string) {
	t.Helper()
	args := []string{"test", "-c", "-trimpath"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	args = append(args, "-o")
	var bin string
	ref = build(t, registry, repo, args, pkg, &bin, entrypointBinary(t))
	return ref, bin
}

func build(t testing.TB, registry, repo string, args []string, pkg string, binOut *string, entry []byte) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "run")
	cmd := exec.Command("go", append(args, bin, pkg)...)
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testimage: go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, out)
	}
	t.Logf("testimage: compiled %s in %s", pkg, time.Since(start).Round(time.Millisecond))
	if binOut != nil {
		*binOut = bin
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	layerTar := layer(data, entry)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Entrypoint: []string{"/testship/run"}, User: "65532:65532", WorkingDir: "/tmp",
		Env: []string{"PATH=/testship", "HOME=/tmp", "TMPDIR=/tmp"}})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, "application/vnd.docker.distribution.manifest.v2+json")
	sum := sha256.Sum256(layerTar)
	ref, err := name.NewTag(registry+"/testship-e2e/"+repo+":"+hex.EncodeToString(sum[:])[:16], name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("testimage: push %s: %v", ref, err)
	}
	t.Logf("testimage: pushed %s (%d MB)", ref, len(data)>>20)
	return ref.String()
}

func layer(bin, entry []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "testship/", Mode: 0o755, ModTime: epoch})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: epoch})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "testship/run", Mode: 0o755, Size: int64(len(bin)), ModTime: epoch})
	tw.Write(bin)
	if entry != nil {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "testship/entrypoint", Mode: 0o755, Size: int64(len(entry)), ModTime: epoch})
		tw.Write(entry)
	}
	tw.Close()
	return buf.Bytes()
}

// The probe image: pkg/runner/testdata/probe (tests that pass, fail,
// sleep, flood, ... on demand) compiled with `go test -c`, pushed to the
// local registry once per test process.
var (
	probeOnce          sync.Once
	probeRef, probeTag string
)

// Probe returns the probe image by digest (runs are always of a digest)
// and by its tag, building and pushing it on the first call.
func Probe(t testing.TB, registry string) (ref, tag string) {
	t.Helper()
	probeOnce.Do(func() {
		probeTag, _ = Test(t, registry, "runner-probe", "./pkg/runner/testdata/probe")
		var err error
		if probeRef, err = imageref.Resolve(context.Background(), probeTag); err != nil {
			t.Errorf("testimage: resolve the probe image: %v", err)
		}
	})
	if probeRef == "" {
		t.Fatal("testimage: the probe image was not built (see the first test's log)")
	}
	return probeRef, probeTag
}
