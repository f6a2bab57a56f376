package image

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Skipping the no-op compile.
//
// A `go test -c` of an unchanged package still costs seconds: go loads the
// whole import graph and hashes every source file of every dependency
// before it finds the binary up to date, and then touches the binary. The
// pipeline runs it only when something it could read has changed since the
// compile that wrote the binary. Before each compile it fingerprints those
// inputs (inputsKey); after a successful one it writes the fingerprint and
// the binary's file identity next to the binary (<binary>.stamp). The next
// run whose fingerprint and binary identity equal the stamp's uses the
// binary as it is.
//
// The fingerprint covers:
//   - the command: go's arguments, the working directory, GOOS, GOARCH,
//     CGO_ENABLED (always 0);
//   - the toolchain: the `go` found in PATH and its GOROOT (VERSION,
//     go.env, the compiler and linker), every GO* and CGO_* variable and
//     go's own environment file (`go env -w`);
//   - the main module: every file and directory under the directory of
//     go.mod (names, size, modification and change times, inode), except
//     .git, nested modules and the state directory.
//
// Dependencies in the module cache are not walked: go.sum pins them and the
// cache is read-only. Whatever the fingerprint cannot vouch for makes go
// run as before: a go.work workspace, a go.mod `replace` to a local
// directory, GOFLAGS with -overlay/-toolexec/-modfile/-pgo, a development
// toolchain, a symlinked directory in the module, a module of more than
// maxWalk entries. So does a file changed less than racyWindow before the
// fingerprint was taken (a second change within the file system's
// timestamp granularity could keep its times, as in Git's "racily clean"
// files): the compile runs, but leaves no stamp.

const (
	stampSuffix = ".stamp"
	maxWalk     = 50000
)

// racyWindow is how recent a change must be to make a fingerprint racy:
// above the coarsest file timestamps (ext3: 1 s, FAT: 2 s). A variable for
// the tests.
var racyWindow = 2 * time.Second

// inputs is a fingerprint of what a compile reads.
type inputs struct {
	key  string
	racy bool // a file changed just before: do not stamp
}

// errNoVouch says the fingerprint cannot vouch for the inputs; go runs.
var errNoVouch = errors.New("inputs not fingerprinted")

// compileInputs fingerprints what `go <args>` with env reads, from the
// working directory; stateDir (where binaries and stamps live) is left out.
func compileInputs(args, env []string, stateDir string) (inputs, error) {
	start := time.Now()
	h := sha256.New()
	fmt.Fprintf(h, "testship-compile-inputs-v1\n")
	for _, a := range args {
		fmt.Fprintf(h, "arg %q\n", a)
	}
	for _, e := range env {
		fmt.Fprintf(h, "env %q\n", e)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return inputs{}, err
	}
	fmt.Fprintf(h, "cwd %q\n", cwd)
	if err := hashToolchain(h); err != nil {
		return inputs{}, err
	}
	root, err := moduleRoot(cwd)
	if err != nil {
		return inputs{}, err
	}
	fmt.Fprintf(h, "module %q\n", root)
	skip := ""
	if stateDir != "" {
		if skip, err = filepath.Abs(stateDir); err != nil {
			return inputs{}, err
		}
	}
	newest, err := hashTree(h, root, skip)
	if err != nil {
		return inputs{}, err
	}
	return inputs{key: hex.EncodeToString(h.Sum(nil)), racy: !newest.Before(start.Add(-racyWindow))}, nil
}

// goEnvPrefixes select the variables that can change what go builds.
var goEnvPrefixes = []string{"GO", "CGO_"}

// hashToolchain covers the go command, its GOROOT and its environment.
func hashToolchain(h io.Writer) error {
	var vars []string
	for _, kv := range os.Environ() {
		for _, p := range goEnvPrefixes {
			if strings.HasPrefix(kv, p) {
				vars = append(vars, kv)
				break
			}
		}
	}
	sort.Strings(vars)
	for _, kv := range vars {
		fmt.Fprintf(h, "goenv %q\n", kv)
	}
	if v := os.Getenv("GO111MODULE"); v == "off" {
		return fmt.Errorf("%w: GO111MODULE=off", errNoVouch)
	}
	for _, f := range strings.Fields(os.Getenv("GOFLAGS")) {
		for _, bad := range []string{"-overlay", "-toolexec", "-modfile", "-pgo"} {
			if f == bad || strings.HasPrefix(f, bad+"=") || f == "-"+bad || strings.HasPrefix(f, "-"+bad+"=") {
				return fmt.Errorf("%w: GOFLAGS has %s", errNoVouch, bad)
			}
		}
	}
	if w := os.Getenv("GOWORK"); w != "" && w != "off" {
		return fmt.Errorf("%w: GOWORK=%s", errNoVouch, w)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	if gobin, err = filepath.Abs(gobin); err != nil {
		return err
	}
	if gobin, err = filepath.EvalSymlinks(gobin); err != nil {
		return err
	}
	if err := hashFile(h, "go", gobin); err != nil {
		return err
	}
	goroot := os.Getenv("GOROOT")
	if goroot == "" {
		goroot = filepath.Dir(filepath.Dir(gobin))
	}
	version, err := os.ReadFile(filepath.Join(goroot, "VERSION"))
	if err != nil || strings.HasPrefix(string(version), "devel") {
		return fmt.Errorf("%w: no release toolchain at %s", errNoVouch, goroot)
	}
	fmt.Fprintf(h, "goroot %q %q\n", goroot, version)
	tools, _ := filepath.Glob(filepath.Join(goroot, "pkg", "tool", "*", "*"))
	for _, p := range append([]string{filepath.Join(goroot, "go.env")}, tools...) {
		if err := hashFile(h, "goroot", p); err != nil {
			return err
		}
	}
	envFile := os.Getenv("GOENV")
	if envFile == "" {
		if dir, err := os.UserConfigDir(); err == nil {
			envFile = filepath.Join(dir, "go", "env")
		}
	}
	if envFile != "" && envFile != "off" {
		return hashFile(h, "goenvfile", envFile)
	}
	return nil
}

// moduleRoot is the directory of the go.mod that go uses from cwd. A
// go.work above it, or a go.mod replace pointing at a local directory,
// brings in sources the fingerprint does not walk.
func moduleRoot(cwd string) (string, error) {
	root := ""
	for dir := cwd; ; dir = filepath.Dir(dir) {
		if root == "" {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				root = dir
			}
		}
		if os.Getenv("GOWORK") == "" {
			if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
				return "", fmt.Errorf("%w: workspace %s", errNoVouch, filepath.Join(dir, "go.work"))
			}
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	if root == "" {
		return "", fmt.Errorf("%w: no go.mod above %s", errNoVouch, cwd)
	}
	if local, err := localReplace(filepath.Join(root, "go.mod")); err != nil || local != "" {
		if err == nil {
			err = fmt.Errorf("%w: go.mod replaces a module with the directory %s", errNoVouch, local)
		}
		return "", err
	}
	return root, nil
}

// localReplace returns the first local directory a replace directive of
// go.mod points at ("" when none): a path starting with ./, ../ or /.
func localReplace(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "//")
		_, target, ok := strings.Cut(line, "=>")
		if !ok {
			continue
		}
		if fields := strings.Fields(target); len(fields) > 0 {
			if p := strings.Trim(fields[0], `"`+"`"); strings.HasPrefix(p, ".") || strings.HasPrefix(p, "/") {
				return p, nil
			}
		}
	}
	return "", sc.Err()
}

// hashTree writes every entry under root (skipping .git, nested modules and
// skip) with its file identity, and returns the newest modification or
// change time seen.
func hashTree(h io.Writer, root, skip string) (time.Time, error) {
	var newest time.Time
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n > maxWalk {
			return fmt.Errorf("%w: more than %d entries under %s", errNoVouch, maxWalk, root)
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if path != root && (d.Name() == ".git" || path == skip) {
				return filepath.SkipDir // whether it exists or not
			}
			if path != root {
				if _, err := os.Lstat(filepath.Join(path, "go.mod")); err == nil {
					fmt.Fprintf(h, "nested-module %q\n", rel)
					return filepath.SkipDir
				}
			}
			fmt.Fprintf(h, "dir %q\n", rel)
			return nil
		}
		if d.Name() == ".git" && filepath.Dir(path) == root {
			return nil // a worktree's .git file
		}
		lst, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st := lst
		if lst.Mode()&fs.ModeSymlink != 0 {
			if st, err = os.Stat(path); err != nil {
				return fmt.Errorf("%w: dangling symlink %s", errNoVouch, path)
			}
			if st.IsDir() {
				return fmt.Errorf("%w: symlinked directory %s", errNoVouch, path)
			}
			fmt.Fprintf(h, "link %q %s\n", rel, fileID(lst))
		}
		fmt.Fprintf(h, "file %q %s\n", rel, fileID(st))
		for _, t := range fileTimes(st) {
			if t.After(newest) {
				newest = t
			}
		}
		return nil
	})
	return newest, err
}

// hashFile writes the identity of the file at path (or that it is absent).
func hashFile(h io.Writer, what, path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(h, "%s %q absent\n", what, path)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "%s %q %s\n", what, path, fileID(st))
	return nil
}

// fileID identifies a file's content without reading it: size, mode,
// modification and change time (the latter set by the kernel on every
// write, rename or touch, and not settable), inode and device.
func fileID(st fs.FileInfo) string {
	id := fmt.Sprintf("%d %o %d", st.Size(), st.Mode(), st.ModTime().UnixNano())
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		id += fmt.Sprintf(" %d.%09d %d %d", sys.Ctim.Sec, sys.Ctim.Nsec, sys.Ino, sys.Dev)
	}
	return id
}

func fileTimes(st fs.FileInfo) []time.Time {
	ts := []time.Time{st.ModTime()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ts = append(ts, time.Unix(sys.Ctim.Sec, sys.Ctim.Nsec))
	}
	return ts
}

// stampContent is what a stamp holds: the inputs' fingerprint and the
// binary's identity.
func stampContent(in inputs, bin string) (string, error) {
	st, err := os.Stat(bin)
	if err != nil {
		return "", err
	}
	return "testship-compile-stamp-v1\n" + in.key + "\n" + fileID(st) + "\n", nil
}

// upToDate reports whether bin was compiled from exactly these inputs and
// has not changed since.
func upToDate(in inputs, bin string) bool {
	if in.key == "" {
		return false
	}
	want, err := stampContent(in, bin)
	if err != nil {
		return false
	}
	got, err := os.ReadFile(bin + stampSuffix)
	return err == nil && string(got) == want
}

// writeStamp records that bin was compiled from in (unless a file changed
// too recently to be sure).
func writeStamp(in inputs, bin string) {
	if in.key == "" || in.racy {
		return
	}
	if s, err := stampContent(in, bin); err == nil {
		_ = os.WriteFile(bin+stampSuffix, []byte(s), 0o644) // a cache: a failed write costs a compile
	}
}
