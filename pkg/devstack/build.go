package devstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
)

// binSet is a group of binaries built from one tools module into a cache
// directory keyed by version. A marker file is written only after a
// successful build, so a killed build is redone.
type binSet struct {
	name    string   // for messages: "Kubernetes v1.34.4"
	dir     string   // cache dir, e.g. /var/cache/testship/kube-v1.34.4
	module  string   // tools module, relative to the repo: tools/kube
	ldflags string   // -ldflags value
	pkgs    []string // packages to build
	bins    []string // names of the resulting binaries
}

const markerName = ".testship-build-complete"

func kubeBinSet(cacheDir string) binSet {
	v := KubeVersion
	major, minor := "1", strings.Split(strings.TrimPrefix(v, "v"), ".")[1]
	var ld []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ld = append(ld,
			"-X "+pkg+".gitVersion="+v,
			"-X "+pkg+".gitMajor="+major,
			"-X "+pkg+".gitMinor="+minor,
			"-X "+pkg+".gitTreeState=clean")
	}
	bins := []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"}
	var pkgs []string
	for _, b := range bins {
		pkgs = append(pkgs, "k8s.io/kubernetes/cmd/"+b)
	}
	return binSet{
		name:    "Kubernetes " + v,
		dir:     filepath.Join(cacheDir, "kube-"+v),
		module:  "tools/kube",
		ldflags: "-s -w " + strings.Join(ld, " "),
		pkgs:    pkgs,
		bins:    bins,
	}
}

func corednsBinSet(cacheDir string) binSet {
	return binSet{
		name:    "CoreDNS " + CoreDNSVersion,
		dir:     filepath.Join(cacheDir, "coredns-"+CoreDNSVersion),
		module:  "tools/coredns",
		ldflags: "-s -w",
		pkgs:    []string{"."},
		bins:    []string{"coredns"},
	}
}

func (b binSet) path(bin string) string { return filepath.Join(b.dir, bin) }

// ready reports whether the build completed and every binary is present.
func (b binSet) ready() bool {
	if _, err := os.Stat(filepath.Join(b.dir, markerName)); err != nil {
		return false
	}
	for _, bin := range b.bins {
		if fi, err := os.Stat(b.path(bin)); err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// build runs `go build` in the tools module, printing progress to out every
// 30 s, with the full output in <dir>.build.log.
func (b binSet) build(ctx context.Context, repoDir string, out io.Writer) error {
	goBin, err := goTool()
	if err != nil {
		return err
	}
	modDir := filepath.Join(repoDir, b.module)
	if _, err := os.Stat(filepath.Join(modDir, "go.mod")); err != nil {
		return fmt.Errorf("build %s: tools module %s not found: %w", b.name, modDir, err)
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	os.Remove(filepath.Join(b.dir, markerName))
	logPath := b.dir + ".build.log"
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()

	// Same flags as the documented manual build, so its build cache is reused.
	args := []string{"build", "-v", "-ldflags", b.ldflags, "-o", b.dir + "/"}
	args = append(args, b.pkgs...)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	var compiled atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			compiled.Add(1)
		}
	}()
	fmt.Fprintf(out, "  building %s from the Go module proxy into %s (long on a cold cache: ~10 min on 2 cores; log %s)\n", b.name, b.dir, logPath)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		pw.Close()
		return fmt.Errorf("build %s: %w", b.name, err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait(); pw.Close() }()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-waitErr:
			<-done
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("build %s: interrupted: %w", b.name, ctx.Err())
				}
				return fmt.Errorf("build %s failed (%v); last lines of %s:\n%s", b.name, err, logPath, tailFile(logPath, 20))
			}
			for _, bin := range b.bins {
				if _, err := os.Stat(b.path(bin)); err != nil {
					return fmt.Errorf("build %s: %s missing after a successful go build", b.name, b.path(bin))
				}
			}
			stamp := fmt.Sprintf("%s built %s in %s with %s\n", b.name, time.Now().UTC().Format(time.RFC3339), time.Since(start).Round(time.Second), runtime.Version())
			if err := os.WriteFile(filepath.Join(b.dir, markerName), []byte(stamp), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(out, "  built %s in %s\n", b.name, time.Since(start).Round(time.Second))
			return nil
		case <-tick.C:
			fmt.Fprintf(out, "  still building %s: %s, %d packages compiled so far\n", b.name, time.Since(start).Round(time.Second), compiled.Load())
		}
	}
}

// goTool finds the go command: on PATH, else next to the running toolchain.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", errors.New("the go command is not on PATH: install Go 1.26 to build the local stack's components")
}

// findRepo locates the testship source tree holding the tools modules:
// from the working directory upward, else from this file's location at
// compile time.
func findRepo(explicit string) (string, error) {
	has := func(d string) bool {
		_, err := os.Stat(filepath.Join(d, "tools", "kube", "go.mod"))
		return err == nil
	}
	if explicit != "" {
		if has(explicit) {
			return explicit, nil
		}
		return "", fmt.Errorf("%s has no tools/kube/go.mod", explicit)
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if has(d) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		if d := filepath.Dir(filepath.Dir(filepath.Dir(file))); has(d) {
			return d, nil
		}
	}
	return "", errors.New("cannot find testship's tools/kube module (needed to build the cluster's binaries): run from the testship repository")
}
