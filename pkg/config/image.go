package config

import (
	"fmt"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Variables of the image pipeline.
var (
	Registry = Declare(Var{Name: "TESTSHIP_REGISTRY", Default: "127.0.0.1:5000", Area: "image",
		Help: "registry host[:port] to push to; <account>.dkr.ecr.<region>.amazonaws.com is ECR"})
	RegistryType = Declare(Var{Name: "TESTSHIP_REGISTRY_TYPE", Default: "auto", Area: "image",
		Help: "auto (ECR when the host is an ECR host), ecr, or oci (Docker credentials)"})
	Repository = Declare(Var{Name: "TESTSHIP_REPOSITORY", Default: "testship", Area: "image",
		Help: "repository prefix: images are <registry>/<prefix>/{base,test,<app>}"})
	TestPackage = Declare(Var{Name: "TESTSHIP_TEST_PACKAGE", Default: "./tests/link", Area: "image",
		Help: "Go package whose tests go into the test image (go test -c)"})
	TestTags = Declare(Var{Name: "TESTSHIP_TEST_TAGS", Default: "e2e", Area: "image",
		Help: "build tags for go test -c, comma-separated (the link example's test carries the e2e tag)"})
	Apps = Declare(Var{Name: "TESTSHIP_APPS", Default: "link=./tests/link/cmd/link", Area: "image",
		Help: "name=package,... Go mains built into images of their own (the environment's services); empty for none"})
	Platform = Declare(Var{Name: "TESTSHIP_PLATFORM", Default: "linux/" + runtime.GOARCH, Area: "image",
		Help: "target OS/arch of the images, e.g. linux/amd64, or a comma-separated list (linux/amd64,linux/arm64) for one image index per image"})
	BaseFrom = Declare(Var{Name: "TESTSHIP_BASE_FROM", Default: "scratch", Area: "image",
		Help: "image the base starts FROM: scratch (nothing pulled) or any image you can pull, e.g. debian:bookworm-slim"})
	StateDir = Declare(Var{Name: "TESTSHIP_STATE_DIR", Default: ".testship", Area: "image",
		Help: "where build outputs and the pushed image references (images.json) are kept"})
	Progress = Declare(Var{Name: "TESTSHIP_PROGRESS", Default: "auto", Area: "image",
		Help: "auto, tty (progress bars) or plain (one line per event; the default when CI=true or not a terminal)"})
)

// Image is the validated configuration of the image pipeline.
type Image struct {
	Registry     string
	RegistryType string // "ecr" or "oci" (auto resolved)
	Repository   string
	TestPackage  string
	TestTags     string
	Apps         []App
	Platform     string // os/arch, or a comma-separated list of them (an image index)
	BaseFrom     string
	StateDir     string
	Progress     string // "tty" or "plain" or "auto"
}

// App is a Go main built into an image of its own.
type App struct {
	Name    string
	Package string
}

// OS and Arch split Platform (its first platform when it lists several).
func (c Image) OS() string   { os, _, _ := strings.Cut(c.PlatformList()[0], "/"); return os }
func (c Image) Arch() string { _, arch, _ := strings.Cut(c.PlatformList()[0], "/"); return arch }

// PlatformList returns the platforms of Platform, in the order given.
func (c Image) PlatformList() []string {
	var out []string
	for _, p := range strings.Split(c.Platform, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return []string{""}
	}
	return out
}

// MultiPlatform reports whether Platform lists more than one platform.
func (c Image) MultiPlatform() bool { return len(c.PlatformList()) > 1 }

// Platforms the images can target: Linux containers on the architectures
// the Go toolchain and container runtimes both support.
var Platforms = []string{"linux/386", "linux/amd64", "linux/arm", "linux/arm64", "linux/ppc64le", "linux/riscv64", "linux/s390x"}

var (
	repoRe    = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagsRe    = regexp.MustCompile(`^([A-Za-z0-9_.]+(,[A-Za-z0-9_.]+)*)?$`)
	appNameRe = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)
	ecrHostRe = regexp.MustCompile(`^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$`)
)

// ParseECRHost reports whether host is an ECR registry host and returns its
// account ID and region.
func ParseECRHost(host string) (account, region string, ok bool) {
	m := ecrHostRe.FindStringSubmatch(host)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// LoadImage reads and validates the image pipeline's variables.
func LoadImage() (Image, error) {
	c := Image{
		Registry:     Get(Registry),
		RegistryType: strings.ToLower(Get(RegistryType)),
		Repository:   Get(Repository),
		TestPackage:  Get(TestPackage),
		TestTags:     Get(TestTags),
		Platform:     strings.ToLower(Get(Platform)),
		BaseFrom:     Get(BaseFrom),
		StateDir:     Get(StateDir),
		Progress:     strings.ToLower(Get(Progress)),
	}
	if _, err := name.NewRegistry(c.Registry, name.StrictValidation); err != nil || strings.ContainsAny(c.Registry, "/@") {
		return c, &Error{Name: Registry, Value: c.Registry, Want: "a registry host[:port] without a scheme or path, e.g. 127.0.0.1:5000 or 123456789012.dkr.ecr.eu-west-1.amazonaws.com"}
	}
	switch c.RegistryType {
	case "auto":
		c.RegistryType = "oci"
		if _, _, ok := ParseECRHost(c.Registry); ok {
			c.RegistryType = "ecr"
		}
	case "ecr", "oci":
	default:
		return c, &Error{Name: RegistryType, Value: c.RegistryType, Want: "auto, ecr or oci"}
	}
	if !repoRe.MatchString(c.Repository) {
		return c, &Error{Name: Repository, Value: c.Repository, Want: "a lowercase repository path such as testship or team/soak"}
	}
	if !strings.HasPrefix(c.TestPackage, ".") && !strings.Contains(c.TestPackage, "/") {
		return c, &Error{Name: TestPackage, Value: c.TestPackage, Want: "a Go package path such as ./tests/link"}
	}
	if !tagsRe.MatchString(c.TestTags) {
		return c, &Error{Name: TestTags, Value: c.TestTags, Want: "comma-separated build tags such as e2e or e2e,soak"}
	}
	if err := checkPlatforms(c.Platform); err != nil {
		return c, err
	}
	c.Platform = strings.Join(c.PlatformList(), ",")
	if c.BaseFrom != "scratch" {
		if _, err := name.ParseReference(c.BaseFrom); err != nil {
			return c, &Error{Name: BaseFrom, Value: c.BaseFrom, Want: "scratch or an image reference such as debian:bookworm-slim"}
		}
	}
	switch c.Progress {
	case "auto", "tty", "plain":
	default:
		return c, &Error{Name: Progress, Value: c.Progress, Want: "auto, tty or plain"}
	}
	apps, err := parseApps(Get(Apps))
	if err != nil {
		return c, err
	}
	c.Apps = apps
	return c, nil
}

func checkPlatforms(val string) error {
	seen := map[string]bool{}
	items := strings.Split(val, ",")
	for _, p := range items {
		p = strings.TrimSpace(p)
		if !contains(Platforms, p) {
			want := "one of " + strings.Join(Platforms, ", ")
			if len(items) > 1 {
				want = "a comma-separated list of distinct platforms, each one of " + strings.Join(Platforms, ", ") + " (" + strconv.Quote(p) + " is not)"
			}
			return &Error{Name: Platform, Value: val, Want: want}
		}
		if seen[p] {
			return &Error{Name: Platform, Value: val, Want: "each platform once (" + p + " is listed twice)"}
		}
		seen[p] = true
	}
	return nil
}

func parseApps(val string) ([]App, error) {
	var apps []App
	seen := map[string]bool{}
	for _, item := range strings.Split(val, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		n, pkg, ok := strings.Cut(item, "=")
		n, pkg = strings.TrimSpace(n), strings.TrimSpace(pkg)
		want := "name=package pairs such as link=./tests/link/cmd/link, names lowercase letters, digits and dashes, not base or test"
		if !ok || pkg == "" || !appNameRe.MatchString(n) || n == "base" || n == "test" || seen[n] {
			return nil, &Error{Name: Apps, Value: val, Want: want}
		}
		seen[n] = true
		apps = append(apps, App{Name: n, Package: pkg})
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })
	return apps, nil
}

// ImageRef returns the repository (without tag) of the named image.
func (c Image) ImageRef(image string) string {
	return fmt.Sprintf("%s/%s/%s", c.Registry, c.Repository, image)
}
