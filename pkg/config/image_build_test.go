package config

import (
	"errors"
	"strings"
	"testing"
)

func TestLoadImageBuild(t *testing.T) {
	for _, v := range Vars("image") {
		t.Setenv(v.Name, "")
	}
	b, err := loadImageBuildOnly()
	if err != nil || !b.Direct() || b.Load || b.Compression != "gzip" {
		t.Fatalf("defaults: %+v %v", b, err)
	}
	t.Setenv(ImageBuilder, "Engine")
	t.Setenv(LoadIntoEngine, "yes")
	t.Setenv(LayerCompression, "zstd")
	if b, err = loadImageBuildOnly(); err != nil || b.Direct() || !b.Load || b.Compression != "zstd" {
		t.Fatalf("set: %+v %v", b, err)
	}
	for _, tc := range []struct{ name, value, want string }{
		{ImageBuilder, "kaniko", "direct or engine"},
		{LayerCompression, "xz", "gzip or zstd"},
		{LoadIntoEngine, "maybe", "true or false"},
	} {
		for _, v := range Vars("image") {
			t.Setenv(v.Name, "")
		}
		t.Setenv(tc.name, tc.value)
		_, err := loadImageBuildOnly()
		var cerr *Error
		if !errors.As(err, &cerr) || cerr.Name != tc.name || !strings.Contains(err.Error(), tc.value) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s=%s: %v", tc.name, tc.value, err)
		}
	}
}

func TestPlatformList(t *testing.T) {
	for _, v := range Vars("image") {
		t.Setenv(v.Name, "")
	}
	t.Setenv(Platform, " linux/arm64 , linux/amd64")
	c, err := LoadImage()
	if err != nil {
		t.Fatal(err)
	}
	if c.Platform != "linux/arm64,linux/amd64" || !c.MultiPlatform() || c.Arch() != "arm64" || len(c.PlatformList()) != 2 {
		t.Fatalf("%+v %v", c, c.PlatformList())
	}
	for _, tc := range []struct{ value, want string }{
		{"linux/amd64,linux/amd64", "listed twice"},
		{"linux/amd64,linux/mips", `"linux/mips" is not`},
		{"linux/amd64,,linux/arm64", `"" is not`},
		{"darwin/arm64", "one of linux/386"},
	} {
		t.Setenv(Platform, tc.value)
		_, err := LoadImage()
		var cerr *Error
		if !errors.As(err, &cerr) || cerr.Name != Platform || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v", tc.value, err)
		}
	}
}

func loadImageBuildOnly() (ImageBuild, error) {
	c := &checker{}
	b := loadImageBuild(c)
	return b, c.err()
}
