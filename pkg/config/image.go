package config

import (
	"fmt"
	"net"
	"os"
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
	// Build says how test and app images are assembled.
	Build ImageBuild
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

// LoadImage reads and validates the image pipeline's variables (the image
// area of Load).
func LoadImage() (Image, error) {
	c := &checker{}
	img := loadImage(c)
	return img, c.err()
}

func loadImage(c *checker) Image {
	img := Image{
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
	img.Build = loadImageBuild(c)
	c.add(Registry, checkRegistry(img.Registry))
	switch img.RegistryType {
	case "auto":
		img.RegistryType = "oci"
		if _, _, ok := ParseECRHost(img.Registry); ok {
			img.RegistryType = "ecr"
		}
	case "ecr":
		// An ECR token goes to an ECR host only; a loopback host is the
		// fake ECR of tests (AWS_ENDPOINT_URL_ECR set).
		_, _, isECR := ParseECRHost(img.Registry)
		if !isECR && !(isLoopbackHost(img.Registry) && os.Getenv("AWS_ENDPOINT_URL_ECR") != "") {
			c.bad(RegistryType, Get(RegistryType), "TESTSHIP_REGISTRY="+ShowValue(Registry, img.Registry)+" is not an ECR host, and an ECR token must go to ECR only",
				"oci (or auto) for this registry, or an ECR registry <account>.dkr.ecr.<region>.amazonaws.com")
		}
	case "oci":
	default:
		c.bad(RegistryType, img.RegistryType, "", "auto, ecr or oci")
	}
	if !repoRe.MatchString(img.Repository) {
		c.bad(Repository, img.Repository, "", "a lowercase repository path such as testship or team/soak")
	}
	if !strings.HasPrefix(img.TestPackage, ".") && !strings.Contains(img.TestPackage, "/") {
		c.bad(TestPackage, img.TestPackage, "", "a Go package path such as ./tests/link")
	} else {
		c.add(TestPackage, checkPackage(TestPackage, img.TestPackage, img.TestPackage, "a Go package path such as ./tests/link"))
	}
	if !tagsRe.MatchString(img.TestTags) {
		c.bad(TestTags, img.TestTags, "", "comma-separated build tags such as e2e or e2e,soak")
	}
	if err := checkPlatforms(img.Platform); err != nil {
		c.add(Platform, err)
	} else {
		img.Platform = strings.Join(img.PlatformList(), ",")
	}
	if img.BaseFrom != "scratch" {
		if _, err := name.ParseReference(img.BaseFrom); err != nil {
			c.bad(BaseFrom, img.BaseFrom, "", "scratch or an image reference such as debian:bookworm-slim")
		}
	}
	if img.StateDir == "" || strings.HasPrefix(img.StateDir, "-") {
		c.bad(StateDir, img.StateDir, "", "a directory path such as .testship")
	}
	switch img.Progress {
	case "auto", "tty", "plain":
	default:
		c.bad(Progress, img.Progress, "", "auto, tty or plain")
	}
	apps, err := parseApps(Get(Apps))
	c.add(Apps, err)
	img.Apps = apps
	return img
}

// checkRegistry checks a registry host[:port]: no scheme, path or
// credentials, a DNS name or IP, a port from 1 to 65535.
func checkRegistry(reg string) error {
	want := "a registry host[:port] without a scheme or path, e.g. 127.0.0.1:5000 or 123456789012.dkr.ecr.eu-west-1.amazonaws.com"
	bad := func(detail string) error { return &Error{Name: Registry, Value: reg, Detail: detail, Want: want} }
	switch {
	case strings.Contains(reg, "://"):
		return bad("a scheme does not belong there")
	case strings.Contains(reg, "@"):
		return bad("credentials do not belong there (log in with docker login, or ECR's AWS credentials)")
	case strings.Contains(reg, "/"):
		return bad("a path does not belong there (the repository prefix is TESTSHIP_REPOSITORY)")
	}
	host, port := reg, ""
	if h, p, err := net.SplitHostPort(reg); err == nil {
		host, port = h, p
		if port == "" {
			return bad("the port is empty")
		}
	} else if strings.Count(reg, ":") == 1 {
		return bad("the port is empty or the address malformed")
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return bad("the port must be a number from 1 to 65535")
		}
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if strings.HasSuffix(host, ".") || len(host) > 253 || !hostRe.MatchString(strings.ToLower(host)) {
		return bad("the host must be an IP address or a DNS name of letters, digits, '-' and '.' (no '_')")
	}
	if _, err := name.NewRegistry(reg, name.StrictValidation); err != nil {
		return bad(err.Error())
	}
	return nil
}

var hostRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// isLoopbackHost reports whether a registry's host is this machine.
func isLoopbackHost(reg string) bool {
	host := reg
	if h, _, err := net.SplitHostPort(reg); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkPackage checks a Go package path given to go: it must not start
// with '-' (go would read it as a flag), and a relative path must be an
// existing directory (a trailing /... allowed).
func checkPackage(varName, value, pkg, want string) error {
	if strings.HasPrefix(pkg, "-") {
		return &Error{Name: varName, Value: value, Detail: quote(pkg) + " starts with '-' and would reach go as a flag", Want: want}
	}
	if pkg != "." && pkg != ".." && !strings.HasPrefix(pkg, "./") && !strings.HasPrefix(pkg, "../") {
		return nil // an import path: go resolves it
	}
	dir := strings.TrimSuffix(strings.TrimSuffix(pkg, "..."), "/")
	if dir == "" {
		dir = "."
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		wd, _ := os.Getwd()
		return &Error{Name: varName, Value: value, Detail: fmt.Sprintf("directory %s does not exist (relative to %s)", pkg, wd), Want: want}
	}
	return nil
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
	c := &checker{}
	var apps []App
	seen := map[string]bool{}
	want := "name=package pairs such as link=./tests/link/cmd/link, names lowercase letters, digits and dashes, not base or test"
	for _, item := range strings.Split(val, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		n, pkg, ok := strings.Cut(item, "=")
		n, pkg = strings.TrimSpace(n), strings.TrimSpace(pkg)
		if !ok || pkg == "" || !appNameRe.MatchString(n) || n == "base" || n == "test" || seen[n] {
			c.bad(Apps, val, "item "+quote(item), want)
			continue
		}
		if err := checkPackage(Apps, val, pkg, want); err != nil {
			c.add(Apps, err)
			continue
		}
		seen[n] = true
		apps = append(apps, App{Name: n, Package: pkg})
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })
	return apps, c.err()
}

// ImageRef returns the repository (without tag) of the named image.
func (c Image) ImageRef(image string) string {
	return fmt.Sprintf("%s/%s/%s", c.Registry, c.Repository, image)
}
