package image

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/testship/testship/pkg/imagestate"
)

func ctxOf(files ...file) *buildContext {
	bc := &buildContext{}
	for _, f := range files {
		bc.add(f)
	}
	return bc
}

func mustDigest(t *testing.T, bc *buildContext, extra ...string) string {
	t.Helper()
	d, err := bc.Digest(extra...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDigestCoversEveryInput(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "run")
	os.WriteFile(bin, []byte("binary v1"), 0o755)
	base := func() *buildContext {
		return ctxOf(file{Name: "Dockerfile", Mode: 0o644, Data: []byte("FROM x")}, file{Name: "run", Mode: 0o755, Src: bin})
	}
	d0 := mustDigest(t, base(), "platform=linux/amd64")

	if d := mustDigest(t, base(), "platform=linux/amd64"); d != d0 {
		t.Fatal("same inputs, different digest")
	}
	// Order of addition does not matter.
	rev := ctxOf(file{Name: "run", Mode: 0o755, Src: bin}, file{Name: "Dockerfile", Mode: 0o644, Data: []byte("FROM x")})
	if mustDigest(t, rev, "platform=linux/amd64") != d0 {
		t.Fatal("digest depends on order")
	}
	changes := map[string]string{
		"platform":   mustDigest(t, base(), "platform=linux/arm64"),
		"dockerfile": mustDigest(t, ctxOf(file{Name: "Dockerfile", Mode: 0o644, Data: []byte("FROM y")}, file{Name: "run", Mode: 0o755, Src: bin}), "platform=linux/amd64"),
		"mode":       mustDigest(t, ctxOf(file{Name: "Dockerfile", Mode: 0o644, Data: []byte("FROM x")}, file{Name: "run", Mode: 0o644, Src: bin}), "platform=linux/amd64"),
		"extra file": mustDigest(t, ctxOf(file{Name: "Dockerfile", Mode: 0o644, Data: []byte("FROM x")}, file{Name: "run", Mode: 0o755, Src: bin}, file{Name: "tmp", Dir: true, Mode: 0o1777}), "platform=linux/amd64"),
	}
	os.WriteFile(bin, []byte("binary v2"), 0o755)
	changes["binary"] = mustDigest(t, base(), "platform=linux/amd64")
	for what, d := range changes {
		if d == d0 {
			t.Errorf("changing the %s did not change the digest", what)
		}
	}
}

func TestDigestMissingFile(t *testing.T) {
	_, err := ctxOf(file{Name: "run", Src: "/nonexistent/run"}).Digest()
	if err == nil {
		t.Fatal("want an error for a missing file")
	}
}

func TestTarKeepsModesAndFixesTimes(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "run")
	os.WriteFile(bin, []byte("#!bin"), 0o755)
	bc := ctxOf(file{Name: "rootfs/tmp", Dir: true, Mode: 0o1777}, file{Name: "run", Mode: 0o755, Src: bin}, file{Name: "Dockerfile", Mode: 0o644, Data: []byte("FROM scratch")})
	var buf bytes.Buffer
	if err := bc.Tar(&buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	got := map[string]*tar.Header{}
	contents := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
		b, _ := io.ReadAll(tr)
		contents[h.Name] = string(b)
	}
	if h := got["rootfs/tmp/"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode != 0o1777 {
		t.Fatalf("tmp dir header %+v", h)
	}
	if h := got["run"]; h == nil || h.Mode != 0o755 || contents["run"] != "#!bin" || h.ModTime.Unix() != 0 {
		t.Fatalf("run header %+v content %q", h, contents["run"])
	}
	if contents["Dockerfile"] != "FROM scratch" {
		t.Fatalf("Dockerfile %q", contents["Dockerfile"])
	}
}

func TestRefHelpers(t *testing.T) {
	r := Ref{Name: "test", Ref: "127.0.0.1:5000/testship/test:abc123", Digest: "sha256:ff"}
	if r.Tag() != "abc123" {
		t.Fatal(r.Tag())
	}
	if r.Pinned() != "127.0.0.1:5000/testship/test@sha256:ff" {
		t.Fatal(r.Pinned())
	}
	r.Digest = ""
	if r.Pinned() != r.Ref {
		t.Fatal(r.Pinned())
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadState(dir); err == nil {
		t.Fatal("want an error naming the missing state file")
	}
	st := &State{Registry: "r", Base: Ref{Name: "base", Ref: "r/x/base:1"}, Test: Ref{Name: "test", Ref: "r/x/test:2", Digest: "sha256:1"},
		Apps: map[string]Ref{"link": {Name: "link", Ref: "r/x/link:3"}}}
	if err := imagestate.Save(dir, st); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Test != st.Test || got.Apps["link"] != st.Apps["link"] {
		t.Fatalf("got %+v", got)
	}
}

func TestCachedSumFollowsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bin")
	os.WriteFile(path, []byte("one"), 0o755)
	f := file{Name: "run", Src: path, CacheSum: true}
	s1, err := f.sum()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".sum"); err != nil {
		t.Fatalf("no cached sum: %v", err)
	}
	again, _ := f.sum()
	if again != s1 {
		t.Fatal("cached sum differs")
	}
	// Rewritten (as go build does when the binary changes): a new sum.
	os.Remove(path)
	os.WriteFile(path, []byte("two"), 0o755)
	s2, _ := f.sum()
	plain, _ := file{Src: path}.sum()
	if s2 == s1 || s2 != plain {
		t.Fatalf("sum after a rewrite: %s (was %s, want %s)", s2, s1, plain)
	}
	// A stale cache file for other content is not trusted.
	os.WriteFile(path+".sum", []byte("garbage"), 0o644)
	if s3, _ := f.sum(); s3 != plain {
		t.Fatal("garbage cache trusted")
	}
}
