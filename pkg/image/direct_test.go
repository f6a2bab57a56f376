package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/testship/testship/pkg/config"
)

// memRegistry is go-containerregistry's registry in memory, counting
// uploads and optionally refusing zstd manifests like a registry that does
// not know the media type.
type memRegistry struct {
	*httptest.Server
	host        string
	refuseZstd  bool
	mu          sync.Mutex
	uploads     int
	uploadBytes int64
}

func newMemRegistry(t *testing.T) *memRegistry {
	r := &memRegistry{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPut || req.Method == http.MethodPatch || req.Method == http.MethodPost {
			body, _ := io.ReadAll(req.Body)
			if r.refuseZstd && strings.Contains(req.URL.Path, "/manifests/") && bytes.Contains(body, []byte("zstd")) {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"unknown media type"}]}`)
				return
			}
			r.mu.Lock()
			r.uploads++
			r.uploadBytes += int64(len(body))
			r.mu.Unlock()
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	r.host = strings.TrimPrefix(r.URL, "http://")
	return r
}

// fakeBinary writes n random bytes as a "binary".
func fakeBinary(t *testing.T, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	path := filepath.Join(t.TempDir(), "run")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// pushBase writes a small base image (one layer, the base's config) to
// host/repo and returns its Ref.
func pushBase(t *testing.T, host, repo string) Ref {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777})
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.DockerManifestSchema2), l)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Entrypoint: []string{BinaryPath}, User: "65532:65532", WorkingDir: "/tmp"})
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/" + repo + ":base"
	tag, _ := name.NewTag(ref)
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return Ref{Name: "base", Ref: ref, Digest: d.String()}
}

func directPipeline(reg *memRegistry, compression string, out io.Writer) *pipeline {
	return &pipeline{cfg: config.Image{Registry: reg.host, Repository: "t", Platform: "linux/amd64"},
		build: config.ImageBuild{Builder: "direct", Compression: compression}, stage: StagePush, out: out,
		reg: &ociRegistry{host: reg.host, keychain: authn.NewMultiKeychain()}}
}

func directImage(base Ref, name, bin, platform, tag string) *image {
	repo := base.Ref[:strings.Index(base.Ref, "/")]
	return &image{name: name, label: name, platform: platform, repo: "t/" + name, bin: bin, direct: true,
		ref: repo + "/t/" + name + ":" + tag, base: &image{name: "base", ref: base.Ref, remote: base.Digest}}
}

func pullImage(t *testing.T, ref string) v1.Image {
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img
}

func TestDirectImageIsReproducibleAndHoldsTheBinary(t *testing.T) {
	for _, compression := range []string{Gzip, Zstd} {
		t.Run(compression, func(t *testing.T) {
			reg := newMemRegistry(t)
			base := pushBase(t, reg.host, "t/base")
			bin := fakeBinary(t, 3<<20)
			var out bytes.Buffer
			p := directPipeline(reg, compression, &out)
			a, b := directImage(base, "test", bin, "linux/arm64", "one"), directImage(base, "test", bin, "linux/arm64", "two")
			if err := p.push(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			before := reg.uploadBytes
			if err := p.push(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if a.remote == "" || a.remote != b.remote {
				t.Fatalf("two builds of the same binary: %s and %s\n%s", a.remote, b.remote, out.String())
			}
			// The base's blobs are not sent again: only the new layer
			// (about the binary's size, compressed random data), config
			// and manifest.
			if sent := reg.uploadBytes - before; sent > 3<<20+64<<10 {
				t.Fatalf("second push sent %d bytes", sent)
			}
			img := pullImage(t, a.ref)
			la, _ := img.Layers()
			lb, _ := pullImage(t, b.ref).Layers()
			da, _ := la[len(la)-1].Digest()
			db, _ := lb[len(lb)-1].Digest()
			if len(la) != 2 || da != db {
				t.Fatalf("layers %d, digests %s %s", len(la), da, db)
			}
			if mt, _ := la[1].MediaType(); (compression == Zstd) != (mt == types.OCILayerZStd) {
				t.Fatalf("layer media type %s for %s", mt, compression)
			}
			cf, _ := img.ConfigFile()
			if cf.Architecture != "arm64" || cf.OS != "linux" || strings.Join(cf.Config.Entrypoint, " ") != BinaryPath || cf.Config.User != "65532:65532" {
				t.Fatalf("config: %s/%s %v %q", cf.OS, cf.Architecture, cf.Config.Entrypoint, cf.Config.User)
			}
			if len(cf.History) == 0 || cf.History[len(cf.History)-1].CreatedBy != directCreatedBy {
				t.Fatalf("history: %+v", cf.History)
			}
			rc, err := la[1].Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			tr := tar.NewReader(rc)
			want, _ := os.ReadFile(bin)
			var names []string
			for {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, h.Name)
				if h.Mode != 0o755 || h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 || h.Uname != "" {
					t.Fatalf("%s: mode %o uid %d gid %d mtime %v", h.Name, h.Mode, h.Uid, h.Gid, h.ModTime)
				}
				if h.Name == "testship/run" {
					got, _ := io.ReadAll(tr)
					if !bytes.Equal(got, want) {
						t.Fatal("testship/run is not the binary")
					}
				}
			}
			if strings.Join(names, " ") != "testship/ testship/run" {
				t.Fatalf("layer entries %v", names)
			}
		})
	}
}

func TestZstdRefusedFallsBackToGzipOnce(t *testing.T) {
	reg := newMemRegistry(t)
	reg.refuseZstd = true
	base := pushBase(t, reg.host, "t/base")
	var out bytes.Buffer
	p := directPipeline(reg, Zstd, &out)
	for _, n := range []string{"test", "app"} {
		im := directImage(base, n, fakeBinary(t, 1<<20), "linux/amd64", "x")
		if err := p.push(context.Background(), im); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		ls, _ := pullImage(t, im.ref).Layers()
		if mt, _ := ls[len(ls)-1].MediaType(); mt != types.DockerLayer {
			t.Fatalf("%s: layer %s, want gzip after the fallback", n, mt)
		}
	}
	if c := strings.Count(out.String(), "refused a zstd layer"); c != 1 || !strings.Contains(out.String(), "using gzip") {
		t.Fatalf("want the fallback said once, got %d:\n%s", c, out.String())
	}
}

func TestIndexListsEveryPlatform(t *testing.T) {
	reg := newMemRegistry(t)
	base := pushBase(t, reg.host, "t/base")
	var out bytes.Buffer
	p := directPipeline(reg, Gzip, &out)
	p.cfg.Platform = "linux/amd64,linux/arm64"
	var children []*image
	for _, pl := range []string{"linux/amd64", "linux/arm64"} {
		im := directImage(base, "test", fakeBinary(t, 1<<20), pl, strings.ReplaceAll(pl, "/", "-"))
		if err := p.push(context.Background(), im); err != nil {
			t.Fatal(err)
		}
		children = append(children, im)
	}
	ix := p.planIndexes(children)
	if len(ix) != 1 || len(ix[0].children) != 2 {
		t.Fatalf("indexes %+v", ix)
	}
	if err := p.pushIndex(context.Background(), ix[0]); err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(ix[0].ref)
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 || im.MediaType != types.DockerManifestList {
		t.Fatalf("index %+v", im)
	}
	for i, m := range im.Manifests {
		if m.Platform == nil || m.Platform.OS+"/"+m.Platform.Architecture != children[i].platform || m.Digest.String() != children[i].remote {
			t.Fatalf("manifest %d: %+v", i, m)
		}
	}
	// Same children, same index tag and digest.
	again := p.planIndexes(children)
	if again[0].ref != ix[0].ref {
		t.Fatalf("index tag changed: %s vs %s", again[0].ref, ix[0].ref)
	}
}

func TestDirectPushDrawsProgressOnATerminal(t *testing.T) {
	reg := newMemRegistry(t)
	base := pushBase(t, reg.host, "t/base")
	for _, progress := range []string{"tty", "plain"} {
		var out bytes.Buffer
		p := directPipeline(reg, Gzip, &out)
		p.cfg.Progress = progress
		if err := p.push(context.Background(), directImage(base, "test", fakeBinary(t, 2<<20), "linux/amd64", progress)); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(out.String(), "\rtest  uploading "); got != (progress == "tty") {
			t.Fatalf("progress=%s: bytes drawn %v:\n%q", progress, got, out.String())
		}
		if !strings.Contains(out.String(), "test  pushed ") {
			t.Fatalf("progress=%s:\n%s", progress, out.String())
		}
	}
}

func TestOutputsArePinned(t *testing.T) {
	f := filepath.Join(t.TempDir(), "out")
	t.Setenv("GITHUB_OUTPUT", f)
	st := &State{
		Base: Ref{Name: "base", Ref: "r:5000/p/base:aaa", Digest: "sha256:01"},
		Test: Ref{Name: "test", Ref: "r:5000/p/test:bbb", Digest: "sha256:02"},
		Apps: map[string]Ref{"link": {Name: "link", Ref: "r:5000/p/link:ccc", Digest: "sha256:03"}},
	}
	if err := writeOutputs(st); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f)
	for _, want := range []string{
		"test_image=r:5000/p/test@sha256:02\n", "test_image_tag=r:5000/p/test:bbb\n", "test_image_digest=sha256:02\n",
		"link_image=r:5000/p/link@sha256:03\n", "link_image_tag=r:5000/p/link:ccc\n", "base_image=r:5000/p/base@sha256:01\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("$GITHUB_OUTPUT lacks %q:\n%s", want, b)
		}
	}
}
