package config

import "strings"

// Variables of how the test and app images are assembled (issue 15).
var (
	ImageBuilder = Declare(Var{Name: "TESTSHIP_IMAGE_BUILDER", Default: "direct", Area: "image",
		Help: "direct (the base plus one layer with the binary, assembled and pushed with go-containerregistry, no Docker Engine) or engine (docker build of images/test/Dockerfile through the Engine API) for the test and app images"})
	LoadIntoEngine = Declare(Var{Name: "TESTSHIP_LOAD", Default: "false", Area: "image",
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

// loadImageBuild reads TESTSHIP_IMAGE_BUILDER, TESTSHIP_LOAD and
// TESTSHIP_LAYER_COMPRESSION (part of the image area of Load).
func loadImageBuild(c *checker) ImageBuild {
	b := ImageBuild{
		Builder:     strings.ToLower(Get(ImageBuilder)),
		Compression: strings.ToLower(Get(LayerCompression)),
	}
	switch b.Builder {
	case "direct", "engine":
	default:
		c.bad(ImageBuilder, b.Builder, "", "direct or engine")
	}
	switch b.Compression {
	case "gzip", "zstd":
	default:
		c.bad(LayerCompression, b.Compression, "", "gzip or zstd")
	}
	b.Load = c.bool(LoadIntoEngine)
	return b
}
