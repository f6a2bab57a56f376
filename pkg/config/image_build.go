package config

import "strings"

// Variables of how the test and app images are assembled (issue 15).
var (
	ImageBuilder = Declare(Var{Name: "TESTSHIP_IMAGE_BUILDER", Default: "direct", Area: "image",
		Help: "direct (the base plus one layer with the binary, assembled and pushed with go-containerregistry, no Docker Engine) or engine (docker build of images/test/Dockerfile through the Engine API) for the test and app images"})
	Load = Declare(Var{Name: "TESTSHIP_LOAD", Default: "false", Area: "image",
		Help: "with the direct builder: image:test also loads the test and app images into the Docker Engine"})
	LayerCompression = Declare(Var{Name: "TESTSHIP_LAYER_COMPRESSION", Default: "gzip", Area: "image",
		Help: "compression of the binary's layer with the direct builder: gzip (parallel, any registry and runtime) or zstd (containerd 1.5+, Docker 23+; falls back to gzip when the registry refuses it)"})
)

// ImageBuild is the validated configuration of how test and app images are
// assembled.
type ImageBuild struct {
	Builder     string // "direct" or "engine"
	Load        bool   // image:test loads direct-built images into the Engine
	Compression string // "gzip" or "zstd"
}

// Direct reports whether test and app images are assembled without the
// Docker Engine.
func (b ImageBuild) Direct() bool { return b.Builder == "direct" }

// LoadImageBuild reads and validates TESTSHIP_IMAGE_BUILDER, TESTSHIP_LOAD
// and TESTSHIP_LAYER_COMPRESSION.
func LoadImageBuild() (ImageBuild, error) {
	b := ImageBuild{
		Builder:     strings.ToLower(Get(ImageBuilder)),
		Compression: strings.ToLower(Get(LayerCompression)),
	}
	switch b.Builder {
	case "direct", "engine":
	default:
		return b, &Error{Name: ImageBuilder, Value: b.Builder, Want: "direct or engine"}
	}
	switch b.Compression {
	case "gzip", "zstd":
	default:
		return b, &Error{Name: LayerCompression, Value: b.Compression, Want: "gzip or zstd"}
	}
	load, err := Bool(Load)
	if err != nil {
		return b, err
	}
	b.Load = load
	return b, nil
}
