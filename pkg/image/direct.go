package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/docker/docker/client"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The direct builder: a test or app image is its base plus one layer
// holding the binary at /testship/run, what images/test/Dockerfile's single
// COPY gives, assembled with go-containerregistry and written straight to
// the registry. The base's blobs are already there (mounted from the base's
// repository, never re-sent); the new layer is tarred and compressed once,
// on every core, while it is uploaded.

// Historyline of the binary's layer in the image's history.
const directCreatedBy = "COPY run /testship/run # testship direct builder (images/test/Dockerfile)"

// remoteOptions authenticates to the registry as the pipeline does.
func (p *pipeline) remoteOptions(ctx context.Context) []remote.Option {
	a := p.auth
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(authn.FromConfig(authn.AuthConfig{
		Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}))}
}

// Assemble returns base with layer (the binary's) appended, as the image of
// platform (os/arch). The result is deterministic: same base and layer,
// same digests.
func Assemble(base v1.Image, layer v1.Layer, platform string) (v1.Image, error) {
	cf, err := base.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read the base image's config: %w", err)
	}
	// The platform the binary was compiled for, whatever the base says.
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = splitPlatform(platform)
	cf.Variant = variantOf(platform)
	base, err = mutate.ConfigFile(base, cf)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, History: v1.History{
		Created: cf.Created, CreatedBy: directCreatedBy}})
	if err != nil {
		return nil, err
	}
	if mt, _ := layer.MediaType(); mt == types.OCILayerZStd {
		// No Docker media type for zstd layers: the image becomes OCI (the
		// base's layers keep their Docker media types, which OCI runtimes
		// accept).
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	return img, nil
}

func splitPlatform(p string) (string, string) { os, arch, _ := strings.Cut(p, "/"); return os, arch }

func variantOf(p string) string {
	if p == "linux/arm" {
		return "v7" // Go's default GOARM
	}
	return ""
}

// pushDirect assembles the image on its base, already in the registry,
// and writes it there. A registry that refuses a zstd layer gets gzip from
// then on, said once.
func (p *pipeline) pushDirect(ctx context.Context, im *image) (digest, how string, err error) {
	opts := p.remoteOptions(ctx)
	if im.base.remote == "" {
		return "", "", fmt.Errorf("%s image: base image %s is not in the registry; run `mage image:push` (it pushes the base first)", im.name, im.base.ref)
	}
	baseRef, err := name.ParseReference(im.base.ref[:strings.LastIndex(im.base.ref, ":")] + "@" + im.base.remote)
	if err != nil {
		return "", "", err
	}
	base, err := remote.Image(baseRef, opts...)
	if err != nil {
		return "", "", fmt.Errorf("%s image: read base image %s from the registry: %w", im.name, baseRef, err)
	}
	tag, err := name.ParseReference(im.ref)
	if err != nil {
		return "", "", err
	}
	compression := p.build.Compression
	if p.gzipOnly {
		compression = Gzip
	}
	for {
		layer := newBinaryLayer(im.bin, compression)
		img, err := Assemble(base, layer, im.platform)
		if err != nil {
			return "", "", fmt.Errorf("%s image: %w", im.name, err)
		}
		werr := p.writeWithProgress(im, func(o ...remote.Option) error { return remote.Write(tag, img, append(opts, o...)...) })
		if werr != nil && compression == Zstd && refusesFormat(werr) {
			p.gzipOnly, compression = true, Gzip
			fmt.Fprintf(p.out, "registry %s refused a zstd layer (%s): using gzip for this run (set TESTSHIP_LAYER_COMPRESSION=gzip to skip the attempt)\n", p.cfg.Registry, shorten(werr))
			continue
		}
		if werr != nil {
			return "", "", fmt.Errorf("push %s: %w", im.ref, werr)
		}
		d, err := img.Digest()
		if err != nil {
			return "", "", err
		}
		size, _ := layer.Size()
		return d.String(), fmt.Sprintf(", one %.1f MB %s layer on the base", float64(size)/1e6, compression), nil
	}
}

// writeWithProgress runs write, drawing the bytes uploaded so far on one
// line when progress goes to a terminal (TESTSHIP_PROGRESS); plain output
// gets the pushing/pushed lines only.
func (p *pipeline) writeWithProgress(im *image, write func(...remote.Option) error) error {
	if _, tty := useTTY(p.out, p.cfg.Progress); !tty && !p.tty {
		return write()
	}
	ch := make(chan v1.Update, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range ch {
			fmt.Fprintf(p.out, "\r%-5s uploading %.1f MB", im.label, float64(u.Complete)/1e6)
		}
		fmt.Fprintln(p.out)
	}()
	err := write(remote.WithProgress(ch))
	<-done
	return err
}

// refusesFormat reports whether the registry refused what it was sent (a
// media type it does not know), as opposed to being unreachable or
// refusing the credentials.
func refusesFormat(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	switch terr.StatusCode {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusNotImplemented:
		return true
	}
	for _, d := range terr.Errors {
		switch d.Code {
		case transport.ManifestInvalidErrorCode, transport.UnsupportedErrorCode, transport.BlobUploadInvalidErrorCode:
			return true
		}
	}
	return false
}

// pushIndex writes the image index of a multi-platform image, listing the
// images of every platform (already in the registry).
func (p *pipeline) pushIndex(ctx context.Context, ix *index) error {
	if ix.remote != "" {
		fmt.Fprintf(p.out, "%-5s %s up to date (in the registry, %s)\n", ix.name, ix.ref, ix.remote)
		return nil
	}
	opts := p.remoteOptions(ctx)
	var adds []mutate.IndexAddendum
	mt := types.DockerManifestList
	for _, c := range ix.children {
		ref, err := name.ParseReference(c.ref[:strings.LastIndex(c.ref, ":")] + "@" + c.remote)
		if err != nil {
			return err
		}
		desc, err := remote.Get(ref, opts...)
		if err != nil {
			return fmt.Errorf("%s image index: read %s: %w", ix.name, ref, err)
		}
		img, err := desc.Image()
		if err != nil {
			return err
		}
		if desc.MediaType != types.DockerManifestSchema2 {
			mt = types.OCIImageIndex
		}
		os, arch := splitPlatform(c.platform)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: desc.MediaType, Platform: &v1.Platform{OS: os, Architecture: arch, Variant: variantOf(c.platform)}}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), mt)
	tag, err := name.ParseReference(ix.ref)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(tag, idx, opts...); err != nil {
		return fmt.Errorf("push image index %s: %w", ix.ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	ix.remote = d.String()
	fmt.Fprintf(p.out, "%-5s pushed %s@%s (index of %d platforms)\n", ix.name, ix.ref, ix.remote, len(ix.children))
	return nil
}

// load writes the direct-built image into the Docker Engine (image:test
// with TESTSHIP_LOAD=true), on the base the Engine built.
func (p *pipeline) load(ctx context.Context, im *image) error {
	cli := p.engine.Client()
	rc, err := cli.ImageSave(ctx, []string{im.base.ref})
	if err != nil {
		return fmt.Errorf("%s image: read base %s from the Docker Engine: %w", im.name, im.base.ref, err)
	}
	saved, err := io.ReadAll(rc) // the base is small: a CA bundle and two files
	rc.Close()
	if err != nil {
		return err
	}
	baseTag, err := name.NewTag(im.base.ref)
	if err != nil {
		return err
	}
	base, err := tarball.Image(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(saved)), nil }, &baseTag)
	if err != nil {
		return fmt.Errorf("%s image: read base %s from the Docker Engine: %w", im.name, im.base.ref, err)
	}
	layer, err := tarball.LayerFromOpener(newBinaryLayer(im.bin, Gzip).Uncompressed, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return err
	}
	img, err := Assemble(base, layer, im.platform)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(im.ref)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.Write(tag, img, pw)) }()
	resp, err := cli.ImageLoad(ctx, pr, client.ImageLoadWithQuiet(true))
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("%s image: load into the Docker Engine: %w", im.name, err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	if _, err := io.Copy(&out, resp.Body); err != nil {
		return err
	}
	if strings.Contains(out.String(), `"error"`) {
		return fmt.Errorf("%s image: load into the Docker Engine: %s", im.name, strings.TrimSpace(out.String()))
	}
	return nil
}
