package image

import (
	"context"
	"debug/elf"
	"os"
	"testing"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/testlog"
)

// The base image's context holds testship's entrypoint, compiled static for
// the platform, at testlog.EntrypointPath; its bytes are part of the tag.
func TestBaseHoldsTheEntrypoint(t *testing.T) {
	p := &pipeline{cfg: config.Image{StateDir: t.TempDir(), BaseFrom: "scratch", Registry: "r.example", Repository: "x"}}
	im, err := p.planBase(context.Background(), "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	i := -1
	for j, f := range im.ctx.files {
		if f.Name == "rootfs"+testlog.EntrypointPath {
			i = j
		}
	}
	if i < 0 || im.ctx.files[i].Mode != 0o755 || im.ctx.files[i].Src == "" {
		t.Fatalf("no executable %s in the base context: %+v", testlog.EntrypointPath, im.ctx.files)
	}
	src := im.ctx.files[i].Src
	bin, err := elf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	for _, prog := range bin.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Fatal("the entrypoint is dynamically linked; the base image has no libc")
		}
	}
	if bin.Machine != elf.EM_X86_64 {
		t.Fatalf("entrypoint for %v, want amd64", bin.Machine)
	}
	// The tag covers the entrypoint's bytes.
	d0 := mustDigest(t, im.ctx)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	changed := src + ".changed"
	if err := os.WriteFile(changed, append(b, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	im.ctx.files[i].Src, im.ctx.files[i].CacheSum = changed, false
	if mustDigest(t, im.ctx) == d0 {
		t.Fatal("the base's digest does not change with the entrypoint")
	}
}
