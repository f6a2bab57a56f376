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
	"encoding/json"
	"errors"
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
	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/gha"
)

// TagLength is how many hex digits of the content digest make a tag.
const TagLength = 20

// Ref is one image as built or pushed.
type Ref struct {
	Name   string `json:"name"`             // base, test, or an app's name
	Ref    string `json:"ref"`              // registry/repository:tag
	Digest string `json:"digest,omitempty"` // manifest digest in the registry, once pushed
}

// Pinned returns registry/repository@digest (Ref when not pushed).
func (r Ref) Pinned() string {
	if r.Digest == "" {
		return r.Ref
	}
	repo := r.Ref[:strings.LastIndex(r.Ref, ":")]
	return repo + "@" + r.Digest
}

// Tag returns the tag part of Ref.
func (r Ref) Tag() string { return r.Ref[strings.LastIndex(r.Ref, ":")+1:] }

// State records the images of the last build or push, for later steps.
type State struct {
	Registry string         `json:"registry"`
	Platform string         `json:"platform"`
	Base     Ref            `json:"base"`
	Test     Ref            `json:"test"`
	Apps     map[string]Ref `json:"apps,omitempty"`
	Pushed   bool           `json:"pushed"`
	Time     time.Time      `json:"time"`
}

// StateFile is the name of the state file inside the state directory.
const StateFile = "images.json"

// LoadState reads the state written by the last Push or Build.
func LoadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no images recorded in %s: run `mage image:push` first", filepath.Join(dir, StateFile))
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s is corrupt: %w; run `mage image:push` again", filepath.Join(dir, StateFile), err)
	}
	return &s, nil
}

func (s *State) save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	tmp := filepath.Join(dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, StateFile))
}

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
	out    io.Writer
	engine *Engine
	reg    Registry
	auth   dockerregistry.AuthConfig
}

// image is one image being planned, built and pushed.
type image struct {
	name    string
	repo    string // repository path inside the registry
	ctx     *buildContext
	args    map[string]string
	ref     string
	remote  string // digest in the registry, "" when absent
	isLocal bool
}

// Push builds whatever is missing and pushes base, test and app images.
// Images whose tag is already in the registry are neither built nor pushed.
func Push(ctx context.Context, cfg config.Image, out io.Writer) (*State, error) {
	return Run(ctx, cfg, StagePush, out)
}

// Run runs the pipeline up to stage.
func Run(ctx context.Context, cfg config.Image, stage Stage, out io.Writer) (*State, error) {
	if out == nil {
		out = io.Discard
	}
	start := time.Now()
	engine, err := Connect(ctx, out, cfg.Progress)
	if err != nil {
		return nil, err
	}
	defer engine.Close()
	p := &pipeline{cfg: cfg, out: out, engine: engine}
	if stage == StagePush {
		if p.reg, err = NewRegistry(ctx, cfg); err != nil {
			return nil, err
		}
		if p.auth, err = p.reg.Auth(ctx); err != nil {
			return nil, err
		}
	}

	base, err := p.planBase()
	if err != nil {
		return nil, err
	}
	plan := []*image{base}
	if stage >= StageTest {
		// Compile before anything is built or pushed: a compile error
		// leaves no state behind.
		more, err := p.planBinaries(ctx, base.ref)
		if err != nil {
			return nil, err
		}
		plan = append(plan, more...)
	}
	for _, im := range plan {
		if err := p.check(ctx, im, stage); err != nil {
			return nil, err
		}
	}
	for _, im := range plan {
		if err := p.build(ctx, im, base, stage); err != nil {
			return nil, err
		}
	}
	if stage == StagePush {
		for _, im := range plan {
			if err := p.push(ctx, im); err != nil {
				return nil, err
			}
		}
	}

	st := &State{Registry: cfg.Registry, Platform: cfg.Platform, Base: base.result(), Pushed: stage == StagePush, Time: time.Now().UTC()}
	for _, im := range plan[1:] {
		if im.name == "test" {
			st.Test = im.result()
			continue
		}
		if st.Apps == nil {
			st.Apps = map[string]Ref{}
		}
		st.Apps[im.name] = im.result()
	}
	if err := st.save(cfg.StateDir); err != nil {
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

func (im *image) result() Ref { return Ref{Name: im.name, Ref: im.ref, Digest: im.remote} }

// planBase assembles the base image's context from files on this machine.
func (p *pipeline) planBase() (*image, error) {
	bc := &buildContext{}
	bc.add(file{Name: "Dockerfile", Mode: 0o644, Data: images.Base})
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
	return p.newImage("base", bc, args)
}

// planBinaries compiles the test binary and the apps, concurrently (an
// unchanged package is a cache lookup, so this is mostly `go` start-up),
// and plans their images.
func (p *pipeline) planBinaries(ctx context.Context, baseRef string) ([]*image, error) {
	buildDir := filepath.Join(p.cfg.StateDir, "build", strings.ReplaceAll(p.cfg.Platform, "/", "-"))
	type bin struct {
		name, pkg string
		test      bool
		took      time.Duration
	}
	bins := []*bin{{name: "test", pkg: p.cfg.TestPackage, test: true}}
	for _, a := range p.cfg.Apps {
		bins = append(bins, &bin{name: a.Name, pkg: a.Package})
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, b := range bins {
		g.Go(func() error {
			t := time.Now()
			if err := compile(gctx, b.pkg, filepath.Join(buildDir, b.name), p.cfg.OS(), p.cfg.Arch(), p.cfg.TestTags, b.test); err != nil {
				return fmt.Errorf("%s image: %w", b.name, err)
			}
			b.took = time.Since(t)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []*image
	for _, b := range bins {
		verb := "go build"
		if b.test {
			verb = "go test -c"
		}
		fmt.Fprintf(p.out, "%-5s %s %s (%.1fs)\n", b.name, verb, b.pkg, b.took.Seconds())
		bc := &buildContext{}
		bc.add(file{Name: "Dockerfile", Mode: 0o644, Data: images.Test})
		bc.add(file{Name: "run", Mode: 0o755, Src: filepath.Join(buildDir, b.name)})
		im, err := p.newImage(b.name, bc, map[string]string{"BASE_IMAGE": baseRef})
		if err != nil {
			return nil, err
		}
		out = append(out, im)
	}
	return out, nil
}

func (p *pipeline) newImage(name string, bc *buildContext, args map[string]string) (*image, error) {
	sum, err := bc.Digest("platform="+p.cfg.Platform, "args="+fmt.Sprint(args))
	if err != nil {
		return nil, fmt.Errorf("%s image: %w", name, err)
	}
	repo := p.cfg.Repository + "/" + name
	return &image{name: name, repo: repo, ctx: bc, args: args,
		ref: p.cfg.Registry + "/" + repo + ":" + sum[:TagLength]}, nil
}

// check finds out whether the image is already in the registry (push) or
// the engine (build).
func (p *pipeline) check(ctx context.Context, im *image, stage Stage) error {
	var err error
	if stage == StagePush {
		if im.remote, _, err = p.reg.Lookup(ctx, im.repo, im.result().Tag()); err != nil {
			return err
		}
		if im.remote != "" {
			fmt.Fprintf(p.out, "%-5s %s up to date (in the registry, %s)\n", im.name, im.ref, im.remote)
			return nil
		}
	}
	im.isLocal, err = p.engine.Has(ctx, im.ref)
	return err
}

// build builds the image unless the registry or the engine has it. The
// base is built only when it is missing everywhere it is needed.
func (p *pipeline) build(ctx context.Context, im, base *image, stage Stage) error {
	if im.remote != "" || im.isLocal {
		if im.remote == "" {
			fmt.Fprintf(p.out, "%-5s %s up to date (built)\n", im.name, im.ref)
		}
		return nil
	}
	auths := map[string]dockerregistry.AuthConfig{}
	if p.reg != nil {
		auths[p.cfg.Registry] = p.auth
	}
	fmt.Fprintf(p.out, "%-5s building %s\n", im.name, im.ref)
	t := time.Now()
	if err := p.engine.Build(ctx, im.name, im.ctx, im.ref, im.args, auths, p.cfg.Platform); err != nil {
		return err
	}
	im.isLocal = true
	fmt.Fprintf(p.out, "%-5s built %s (%.1fs)\n", im.name, im.ref, time.Since(t).Seconds())
	return nil
}

func (p *pipeline) push(ctx context.Context, im *image) error {
	if im.remote != "" {
		return nil
	}
	if err := p.reg.Ensure(ctx, im.repo); err != nil {
		return err
	}
	fmt.Fprintf(p.out, "%-5s pushing %s\n", im.name, im.ref)
	t := time.Now()
	digest, err := p.engine.Push(ctx, im.ref, p.auth)
	if err != nil {
		// Two runs pushing the same content race on the same blobs and
		// the registry may fail one of them; the tag names the content,
		// so if it is there now, the other run pushed the same image.
		if d, found, lerr := p.reg.Lookup(ctx, im.repo, im.result().Tag()); lerr == nil && found {
			im.remote = d
			fmt.Fprintf(p.out, "%-5s %s up to date (pushed meanwhile by another run, %s)\n", im.name, im.ref, d)
			return nil
		}
		return err
	}
	im.remote = digest
	fmt.Fprintf(p.out, "%-5s pushed %s@%s (%.1fs)\n", im.name, im.ref, digest, time.Since(t).Seconds())
	return nil
}

// writeOutputs publishes the pushed references to GitHub Actions.
func writeOutputs(st *State) error {
	refs := append([]Ref{st.Base, st.Test}, sortedApps(st.Apps)...)
	for _, r := range refs {
		if err := gha.SetOutput(r.Name+"_image", r.Ref); err != nil {
			return err
		}
		if err := gha.SetOutput(r.Name+"_image_digest", r.Digest); err != nil {
			return err
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
