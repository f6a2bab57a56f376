// Package image builds testship's images through the Docker Engine API and
// pushes them to ECR or any OCI registry.
//
// Three kinds of image: the base (a minimal root filesystem: CA bundle, a
// non-root user, a writable /tmp), the test image (the test package's
// `go test -c` binary on the base) and app images (a Go main on the base,
// e.g. the environment's services). Every tag is a digest of everything
// that goes into the image, so a step whose tag already exists in the
// registry (push) or the engine (build) does nothing but say so.
package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	dockerregistry "github.com/docker/docker/api/types/registry"
	"golang.org/x/sync/errgroup"

	"github.com/testship/testship/images"
	"github.com/testship/testship/internal/syncio"
	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/gha"
	"github.com/testship/testship/pkg/imagestate"
)

// TagLength is how many hex digits of the content digest make a tag.
const TagLength = 20

// Ref, State and StateFile live in pkg/imagestate (no Docker dependency).
type (
	Ref   = imagestate.Ref
	State = imagestate.State
)

// StateFile is the name of the state file inside the state directory.
const StateFile = imagestate.StateFile

// LoadState reads the state written by the last Push or Build.
func LoadState(dir string) (*State, error) { return imagestate.Load(dir) }

// Stage says how far the pipeline goes.
type Stage int

const (
	StageBase Stage = iota // build the base image
	StageTest              // build base, test and app images
	StagePush              // build what is missing and push everything
)

// pipeline is one run of Build or Push.
type pipeline struct {
	cfg    config.Image
	build  config.ImageBuild
	stage  Stage
	out    io.Writer
	rawOut io.Writer // out itself, for the Engine's and the terminal's sake
	tty    bool      // progress drawn on a terminal (TESTSHIP_PROGRESS)
	engine *Engine
	reg    Registry
	auth   dockerregistry.AuthConfig

	// gzipOnly is set once the registry refused a zstd layer: the rest of
	// the run uses gzip without asking again.
	gzipOnly bool
}

// image is one image of one platform being planned, built and pushed.
type image struct {
	name     string
	label    string // name, with the platform when there are several
	platform string // os/arch
	repo     string // repository path inside the registry
	ctx      *buildContext
	args     map[string]string
	bin      string // the compiled binary (test and app images)
	base     *image // the base image of the same platform (test and app images)
	direct   bool   // assembled and pushed with go-containerregistry, not the Engine
	ref      string
	remote   string // digest in the registry, "" when absent
	looked   bool   // remote is the registry's answer
	isLocal  bool
}

// index is a multi-platform image: one image per platform under one tag.
type index struct {
	name     string
	repo     string
	ref      string
	remote   string
	children []*image
}

// Push builds whatever is missing and pushes base, test and app images.
// Images whose tag is already in the registry are neither built nor pushed.
func Push(ctx context.Context, cfg config.Image, out io.Writer) (*State, error) {
	return Build(ctx, cfg, StagePush, out)
}

// Build runs the image pipeline up to stage (base, test, push), with the
// configuration's builder settings (TESTSHIP_IMAGE_BUILDER, TESTSHIP_LOAD,
// TESTSHIP_LAYER_COMPRESSION).
func Build(ctx context.Context, cfg config.Image, stage Stage, out io.Writer) (*State, error) {
	return BuildWith(ctx, cfg, cfg.Build, stage, out)
}

// BuildWith runs the image pipeline up to stage with the given builder
// settings.
func BuildWith(ctx context.Context, cfg config.Image, b config.ImageBuild, stage Stage, out io.Writer) (*State, error) {
	if out == nil {
		out = io.Discard
	}
	start := time.Now()
	p := &pipeline{cfg: cfg, build: b, stage: stage, out: out, rawOut: out}
	_, p.tty = useTTY(out, cfg.Progress)
	// The Engine builds the base, and everything with the engine builder.
	// A direct push needs it only when the base is missing from the
	// registry, so it is reached then.
	if stage < StagePush || !b.Direct() {
		if _, err := p.connect(ctx); err != nil {
			return nil, err
		}
	}
	defer func() {
		if p.engine != nil {
			p.engine.Close()
		}
	}()
	var err error
	if stage == StagePush {
		if p.reg, err = NewRegistry(ctx, cfg); err != nil {
			return nil, err
		}
		if p.auth, err = p.reg.Auth(ctx); err != nil {
			return nil, err
		}
	}

	platforms := cfg.PlatformList()
	var plan []*image
	bases := map[string]*image{}
	for _, pl := range platforms {
		base, err := p.planBase(ctx, pl)
		if err != nil {
			return nil, err
		}
		bases[pl] = base
		plan = append(plan, base)
	}
	// The bases are checked (registry, Engine) while the binaries compile.
	p.out = syncio.NewWriter(out)
	baseChecked := make(chan error, 1)
	go func() {
		for _, im := range plan {
			if err := p.check(ctx, im); err != nil {
				baseChecked <- err
				return
			}
		}
		baseChecked <- nil
	}()
	if stage >= StageTest {
		// Compile before anything is built or pushed: a compile error
		// leaves no state behind.
		more, err := p.planBinaries(ctx, bases, baseChecked)
		if err != nil {
			return nil, err
		}
		if stage == StagePush {
			// One registry round trip for all of them (ECR: an API call
			// each), the lines still in order.
			g, gctx := errgroup.WithContext(ctx)
			for _, im := range more {
				g.Go(func() error { return p.lookup(gctx, im) })
			}
			if err := g.Wait(); err != nil {
				return nil, err
			}
		}
		for _, im := range more {
			if err := p.check(ctx, im); err != nil {
				return nil, err
			}
		}
		plan = append(plan, more...)
	} else if err := <-baseChecked; err != nil {
		return nil, err
	}
	indexes := p.planIndexes(plan)
	if stage == StagePush {
		for _, ix := range indexes {
			if ix.remote, _, err = p.reg.Lookup(ctx, ix.repo, tagOf(ix.ref)); err != nil {
				return nil, err
			}
		}
	}
	for _, im := range plan {
		if err := p.buildImage(ctx, im); err != nil {
			return nil, err
		}
	}
	if stage == StagePush {
		for _, im := range plan {
			if err := p.push(ctx, im); err != nil {
				return nil, err
			}
		}
		for _, ix := range indexes {
			if err := p.pushIndex(ctx, ix); err != nil {
				return nil, err
			}
		}
	}

	results := map[string]Ref{}
	var names []string
	for _, im := range plan {
		if _, ok := results[im.name]; !ok {
			names = append(names, im.name)
		}
		results[im.name] = im.result()
	}
	for _, ix := range indexes {
		results[ix.name] = Ref{Name: ix.name, Ref: ix.ref, Digest: ix.remote}
	}
	st := &State{Registry: cfg.Registry, Platform: cfg.Platform, Base: results["base"], Pushed: stage == StagePush, Time: time.Now().UTC()}
	for _, n := range names {
		switch n {
		case "base":
		case "test":
			st.Test = results[n]
		default:
			if st.Apps == nil {
				st.Apps = map[string]Ref{}
			}
			st.Apps[n] = results[n]
		}
	}
	if err := imagestate.Save(cfg.StateDir, st); err != nil {
		return nil, fmt.Errorf("record images in %s: %w", cfg.StateDir, err)
	}
	if stage == StagePush {
		if err := writeOutputs(st); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(out, "done in %.1fs; image references in %s\n", time.Since(start).Seconds(), filepath.Join(cfg.StateDir, StateFile))
	return st, nil
}

// connect reaches the Docker Engine once.
func (p *pipeline) connect(ctx context.Context) (*Engine, error) {
	if p.engine != nil {
		return p.engine, nil
	}
	w := p.rawOut
	if w == nil {
		w = p.out
	}
	e, err := Connect(ctx, w, p.cfg.Progress)
	if err != nil {
		return nil, err
	}
	p.engine = e
	return e, nil
}

func (im *image) result() Ref { return Ref{Name: im.name, Ref: im.ref, Digest: im.remote} }

func tagOf(ref string) string { return ref[strings.LastIndex(ref, ":")+1:] }

// label names an image in the output: its name, and its platform when the
// run builds several.
func (p *pipeline) label(name, platform string) string {
	if p.cfg.MultiPlatform() {
		return name + " " + platform
	}
	return name
}

// EntrypointPackage is testship's entrypoint, compiled into every base
// image at testlog.EntrypointPath. It is built by import path, so it
// compiles the same from this repository and from a user's module that
// requires testship.
const EntrypointPackage = "github.com/testship/testship/cmd/testship-entrypoint"

// planBase assembles the base image's context from files on this machine,
// and testship's entrypoint compiled for the platform.
func (p *pipeline) planBase(ctx context.Context, platform string) (*image, error) {
	bc := &buildContext{}
	bc.add(file{Name: "Dockerfile", Mode: 0o644, Data: images.Base})
	ep := filepath.Join(BuildDir(p.cfg.StateDir, platform), "entrypoint")
	goos, goarch, _ := strings.Cut(platform, "/")
	// -s -w: no symbol table or DWARF (tracebacks keep their names); 9.5
	// MB → 6.6 MB.
	if _, err := compileChanged(ctx, p.cfg.StateDir, EntrypointPackage, ep, goos, goarch, "", false, "-ldflags=-s -w"); err != nil {
		return nil, fmt.Errorf("base image: testship's entrypoint: %w", err)
	}
	bc.add(file{Name: "rootfs/testship", Mode: 0o755, Dir: true})
	bc.add(file{Name: "rootfs/testship/entrypoint", Mode: 0o755, Src: ep, CacheSum: true})
	const ca = "/etc/ssl/certs/ca-certificates.crt"
	if _, err := os.Stat(ca); err != nil {
		return nil, fmt.Errorf("base image: CA bundle %s not found (%v): install ca-certificates", ca, err)
	}
	bc.add(file{Name: "rootfs", Mode: 0o755, Dir: true})
	bc.add(file{Name: "rootfs/etc", Mode: 0o755, Dir: true})
	bc.add(file{Name: "rootfs/etc/ssl", Mode: 0o755, Dir: true})
	bc.add(file{Name: "rootfs/etc/ssl/certs", Mode: 0o755, Dir: true})
	bc.add(file{Name: "rootfs/etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Src: ca})
	bc.add(file{Name: "rootfs/tmp", Mode: 0o1777, Dir: true})
	if p.cfg.BaseFrom == "scratch" {
		// A starting image has its own users; scratch gets ours.
		bc.add(file{Name: "rootfs/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\ntestship:x:65532:65532:testship:/tmp:/sbin/nologin\n")})
		bc.add(file{Name: "rootfs/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnobody:x:65534:\ntestship:x:65532:\n")})
	}
	args := map[string]string{"BASE_IMAGE": p.cfg.BaseFrom}
	return p.newImage("base", platform, bc, args)
}

// planBinaries compiles the test binary and the apps for every platform,
// concurrently, and plans their images. A binary whose inputs have not
// changed since it was compiled is not compiled again (see uptodate.go).
//
// baseChecked delivers the base check's result; the binaries' lines follow
// the base's, and a compile error comes before the base's.
func (p *pipeline) planBinaries(ctx context.Context, bases map[string]*image, baseChecked <-chan error) ([]*image, error) {
	type bin struct {
		name, pkg, platform, out string
		test, ran                bool
		took                     time.Duration
	}
	var bins []*bin
	for _, pl := range p.cfg.PlatformList() {
		dir := BuildDir(p.cfg.StateDir, pl)
		bins = append(bins, &bin{name: "test", pkg: p.cfg.TestPackage, test: true, platform: pl, out: filepath.Join(dir, "test")})
		for _, a := range p.cfg.Apps {
			bins = append(bins, &bin{name: a.Name, pkg: a.Package, platform: pl, out: filepath.Join(dir, a.Name)})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, b := range bins {
		g.Go(func() error {
			t := time.Now()
			goos, goarch, _ := strings.Cut(b.platform, "/")
			ran, err := compileChanged(gctx, p.cfg.StateDir, b.pkg, b.out, goos, goarch, p.cfg.TestTags, b.test)
			if err != nil {
				return fmt.Errorf("%s image: %w", b.name, err)
			}
			b.ran = ran
			b.took = time.Since(t)
			return nil
		})
	}
	err := g.Wait()
	if berr := <-baseChecked; err == nil {
		err = berr
	}
	if err != nil {
		return nil, err
	}
	var out []*image
	for _, b := range bins {
		verb := "go build"
		if b.test {
			verb = "go test -c"
		}
		if b.ran {
			fmt.Fprintf(p.out, "%-5s %s %s (%.1fs)\n", p.label(b.name, b.platform), verb, b.pkg, b.took.Seconds())
		} else {
			fmt.Fprintf(p.out, "%-5s %s %s up to date (no input changed since the last compile)\n", p.label(b.name, b.platform), verb, b.pkg)
		}
		bc := &buildContext{}
		bc.add(file{Name: "Dockerfile", Mode: 0o644, Data: images.Test})
		bc.add(file{Name: "run", Mode: 0o755, Src: b.out, CacheSum: true})
		args := map[string]string{"BASE_IMAGE": bases[b.platform].ref}
		var extra []string
		if p.build.Direct() {
			// The direct builder's image differs from the Engine's (its
			// own history, layer compression): another tag.
			extra = append(extra, "builder=direct", "compression="+p.build.Compression)
		}
		im, err := p.newImage(b.name, b.platform, bc, args, extra...)
		if err != nil {
			return nil, err
		}
		im.bin, im.base, im.direct = b.out, bases[b.platform], p.build.Direct()
		out = append(out, im)
	}
	return out, nil
}

func (p *pipeline) newImage(name, platform string, bc *buildContext, args map[string]string, extra ...string) (*image, error) {
	sum, err := bc.Digest(append([]string{"platform=" + platform, "args=" + fmt.Sprint(args)}, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("%s image: %w", name, err)
	}
	repo := p.cfg.Repository + "/" + name
	return &image{name: name, label: p.label(name, platform), platform: platform, repo: repo, ctx: bc, args: args,
		ref: p.cfg.Registry + "/" + repo + ":" + sum[:TagLength]}, nil
}

// planIndexes groups the images of several platforms into one index per
// name, tagged with a digest of its images' tags.
func (p *pipeline) planIndexes(plan []*image) []*index {
	if !p.cfg.MultiPlatform() || p.stage < StagePush {
		return nil
	}
	var out []*index
	byName := map[string]*index{}
	for _, im := range plan {
		ix := byName[im.name]
		if ix == nil {
			ix = &index{name: im.name, repo: im.repo}
			byName[im.name] = ix
			out = append(out, ix)
		}
		ix.children = append(ix.children, im)
	}
	for _, ix := range out {
		h := sha256.New()
		fmt.Fprintf(h, "testship-index-v1\n")
		for _, c := range ix.children {
			fmt.Fprintf(h, "%s %s\n", c.platform, c.ref)
		}
		ix.ref = p.cfg.Registry + "/" + ix.repo + ":" + hex.EncodeToString(h.Sum(nil))[:TagLength]
	}
	return out
}

// check finds out whether the image is already in the registry (push) or
// the engine (build).
func (p *pipeline) check(ctx context.Context, im *image) error {
	var err error
	if p.stage == StagePush {
		if err := p.lookup(ctx, im); err != nil {
			return err
		}
		if im.remote != "" {
			fmt.Fprintf(p.out, "%-5s %s up to date (in the registry, %s)\n", im.label, im.ref, im.remote)
			return nil
		}
		if im.direct {
			return nil // assembled straight into the registry
		}
	}
	if im.direct && !p.build.Load {
		return nil // image:test without TESTSHIP_LOAD: nothing to build in the Engine
	}
	e, err := p.connect(ctx)
	if err != nil {
		if im.name == "base" && p.stage == StagePush {
			return fmt.Errorf("base image %s is not in the registry, and building it needs the Docker Engine: %w; or run `mage image:push` once where an Engine runs, then push again", im.ref, err)
		}
		return err
	}
	im.isLocal, err = e.Has(ctx, im.ref)
	return err
}

// lookup asks the registry for the image's tag, once.
func (p *pipeline) lookup(ctx context.Context, im *image) error {
	if im.looked {
		return nil
	}
	var err error
	if im.remote, _, err = p.reg.Lookup(ctx, im.repo, tagOf(im.ref)); err != nil {
		return err
	}
	im.looked = true
	return nil
}

// buildImage builds the image unless the registry or the engine has it.
// The base is built only when it is missing everywhere it is needed.
func (p *pipeline) buildImage(ctx context.Context, im *image) error {
	if im.remote != "" || im.isLocal {
		if im.remote == "" {
			fmt.Fprintf(p.out, "%-5s %s up to date (built)\n", im.label, im.ref)
		}
		return nil
	}
	if im.direct {
		if p.stage == StagePush {
			return nil // assembled while pushed
		}
		if !p.build.Load {
			fmt.Fprintf(p.out, "%-5s %s: compiled; assembled on the base at image:push (TESTSHIP_LOAD=true loads it into the Docker Engine now)\n", im.label, im.ref)
			return nil
		}
		fmt.Fprintf(p.out, "%-5s loading %s into the Docker Engine\n", im.label, im.ref)
		t := time.Now()
		if err := p.load(ctx, im); err != nil {
			return err
		}
		im.isLocal = true
		fmt.Fprintf(p.out, "%-5s loaded %s (%.1fs)\n", im.label, im.ref, time.Since(t).Seconds())
		return nil
	}
	auths := map[string]dockerregistry.AuthConfig{}
	if p.reg != nil {
		auths[p.cfg.Registry] = p.auth
	}
	fmt.Fprintf(p.out, "%-5s building %s\n", im.label, im.ref)
	t := time.Now()
	if err := p.engine.Build(ctx, im.name, im.ctx, im.ref, im.args, auths, im.platform); err != nil {
		return err
	}
	im.isLocal = true
	fmt.Fprintf(p.out, "%-5s built %s (%.1fs)\n", im.label, im.ref, time.Since(t).Seconds())
	return nil
}

func (p *pipeline) push(ctx context.Context, im *image) error {
	if im.remote != "" {
		return nil
	}
	if err := p.reg.Ensure(ctx, im.repo); err != nil {
		return err
	}
	fmt.Fprintf(p.out, "%-5s pushing %s\n", im.label, im.ref)
	t := time.Now()
	var digest, how string
	var err error
	if im.direct {
		digest, how, err = p.pushDirect(ctx, im)
	} else {
		digest, err = p.engine.Push(ctx, im.ref, p.auth)
	}
	if err != nil {
		// Two runs pushing the same content race on the same blobs and
		// the registry may fail one of them; the tag names the content,
		// so if it is there now, the other run pushed the same image.
		if d, found, lerr := p.reg.Lookup(ctx, im.repo, tagOf(im.ref)); lerr == nil && found {
			im.remote = d
			fmt.Fprintf(p.out, "%-5s %s up to date (pushed meanwhile by another run, %s)\n", im.label, im.ref, d)
			return nil
		}
		return err
	}
	im.remote = digest
	fmt.Fprintf(p.out, "%-5s pushed %s@%s (%.1fs%s)\n", im.label, im.ref, digest, time.Since(t).Seconds(), how)
	return nil
}

// writeOutputs publishes the pushed references to GitHub Actions:
// <name>_image is pinned by digest (repo@sha256:...), so a runner always
// gets exactly what was pushed; <name>_image_tag is the tag form and
// <name>_image_digest the digest alone.
func writeOutputs(st *State) error {
	refs := append([]Ref{st.Base, st.Test}, sortedApps(st.Apps)...)
	for _, r := range refs {
		for _, kv := range [][2]string{{"_image", r.Pinned()}, {"_image_tag", r.Ref}, {"_image_digest", r.Digest}} {
			if err := gha.SetOutput(r.Name+kv[0], kv[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedApps(m map[string]Ref) []Ref {
	var out []Ref
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
