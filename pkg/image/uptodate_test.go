package image

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// tempModule makes a module with one main package in a fresh directory and
// makes it the working directory.
func tempModule(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module example.com/m\n\ngo 1.26\n")
	write(t, filepath.Join(dir, "cmd", "app", "main.go"), "package main\n\nfunc main() { println(\"v1\") }\n")
	t.Chdir(dir)
	return dir
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rewriteKeepingTimes writes content of the same size over path and puts
// its modification time back, as a careless tool (or `cp -p`) could: only
// the change time, which no program can set, tells.
func rewriteKeepingTimes(t *testing.T, path, content string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(content)) != st.Size() {
		t.Fatalf("rewriteKeepingTimes: %d bytes for a %d-byte file", len(content), st.Size())
	}
	time.Sleep(10 * time.Millisecond) // past the file system's timestamp granularity
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(content)
	f.Close()
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
}

func mustInputs(t *testing.T, args, env []string, stateDir string) inputs {
	t.Helper()
	in, err := compileInputs(args, env, stateDir)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestInputsChangeWithEverythingGoReads(t *testing.T) {
	dir := tempModule(t)
	args, env := goCommand("./cmd/app", ".testship/build/app", "linux", "amd64", "", false)
	key := func() string { return mustInputs(t, args, env, ".testship").key }
	k := key()
	if k == "" || key() != k {
		t.Fatal("the fingerprint of unchanged inputs is not stable")
	}
	changes := []struct {
		name string
		do   func()
	}{
		{"source edited, same size, modification time put back", func() {
			rewriteKeepingTimes(t, filepath.Join(dir, "cmd", "app", "main.go"), "package main\n\nfunc main() { println(\"v2\") }\n")
		}},
		{"file added", func() { write(t, filepath.Join(dir, "cmd", "app", "more.go"), "package main\n") }},
		{"file renamed", func() {
			os.Rename(filepath.Join(dir, "cmd", "app", "more.go"), filepath.Join(dir, "cmd", "app", "other.go"))
		}},
		{"file removed", func() { os.Remove(filepath.Join(dir, "cmd", "app", "other.go")) }},
		{"embeddable data file edited", func() { write(t, filepath.Join(dir, "cmd", "app", "testdata", "x.txt"), "x") }},
		{"go.mod edited", func() { write(t, filepath.Join(dir, "go.mod"), "module example.com/m\n\ngo 1.26.0\n") }},
		{"go.sum added", func() { write(t, filepath.Join(dir, "go.sum"), "") }},
		{"hidden directory", func() { write(t, filepath.Join(dir, ".hidden", "a"), "a") }},
		{"GOFLAGS", func() { t.Setenv("GOFLAGS", "-ldflags=-X=main.v=2") }},
		{"GOAMD64", func() { t.Setenv("GOAMD64", "v3") }},
		{"GOEXPERIMENT", func() { t.Setenv("GOEXPERIMENT", "nosynchashtriemap") }},
		{"go's environment file", func() {
			envFile := filepath.Join(t.TempDir(), "env")
			t.Setenv("GOENV", envFile)
			k = key()
			write(t, envFile, "GOAMD64=v2\n")
		}},
	}
	for _, c := range changes {
		c.do()
		if k2 := key(); k2 == k {
			t.Errorf("%s: the fingerprint did not change", c.name)
		} else {
			k = k2
		}
	}
	// What go does not read for this module, and the state directory
	// (binaries, stamps, images.json), leave it alone.
	for _, c := range []struct {
		name string
		do   func()
	}{
		{"state directory", func() { write(t, filepath.Join(dir, ".testship", "images.json"), "{}") }},
		{"state directory removed", func() { os.RemoveAll(filepath.Join(dir, ".testship")) }},
		{"nested module", func() {
			write(t, filepath.Join(dir, "tools", "go.mod"), "module example.com/tools\n")
			k = key()
			write(t, filepath.Join(dir, "tools", "x.go"), "package tools\n")
		}},
		{".git", func() { write(t, filepath.Join(dir, ".git", "HEAD"), "ref") }},
	} {
		c.do()
		if key() != k {
			t.Errorf("%s: the fingerprint changed", c.name)
		}
	}
	// The command itself.
	for _, other := range [][2][]string{
		{{"build", "-tags", "e2e", "-trimpath", "-buildvcs=false", "-o", ".testship/build/app", "./cmd/app"}, env},
		{args, {"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64"}},
	} {
		if mustInputs(t, other[0], other[1], ".testship").key == k {
			t.Errorf("go %v with %v: same fingerprint as go %v with %v", other[0], other[1], args, env)
		}
	}
	os.Chdir(filepath.Join(dir, "cmd"))
	if key() == k {
		t.Error("another working directory: same fingerprint")
	}
}

func TestInputsRefuseWhatTheyCannotSee(t *testing.T) {
	args, env := goCommand("./cmd/app", "out", "linux", "amd64", "", false)
	for _, c := range []struct {
		name string
		do   func(t *testing.T, dir string)
	}{
		{"go.work", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "go.work"), "go 1.26\nuse .\n") }},
		{"GOWORK", func(t *testing.T, _ string) { t.Setenv("GOWORK", "/elsewhere/go.work") }},
		{"local replace", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "go.mod"), "module example.com/m\n\ngo 1.26\n\nreplace (\n\texample.com/x => ../x\n)\n")
		}},
		{"overlay", func(t *testing.T, _ string) { t.Setenv("GOFLAGS", "-mod=mod -overlay=/tmp/o.json") }},
		{"toolexec", func(t *testing.T, _ string) { t.Setenv("GOFLAGS", "--toolexec=/bin/true") }},
		{"GO111MODULE=off", func(t *testing.T, _ string) { t.Setenv("GO111MODULE", "off") }},
		{"symlinked directory", func(t *testing.T, dir string) {
			os.Symlink(t.TempDir(), filepath.Join(dir, "cmd", "linked"))
		}},
		{"development toolchain", func(t *testing.T, _ string) {
			root := t.TempDir()
			write(t, filepath.Join(root, "VERSION"), "devel go1.27-abc\n")
			t.Setenv("GOROOT", root)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := tempModule(t)
			c.do(t, dir)
			if in, err := compileInputs(args, env, ""); !errors.Is(err, errNoVouch) {
				t.Fatalf("want errNoVouch, got %v (key %q)", err, in.key)
			}
		})
	}
	t.Run("no go.mod", func(t *testing.T) {
		t.Chdir(t.TempDir())
		if _, err := compileInputs(args, env, ""); err == nil {
			t.Fatal("want an error outside a module")
		}
	})
	t.Run("replace by version is fine", func(t *testing.T) {
		dir := tempModule(t)
		write(t, filepath.Join(dir, "go.mod"), "module example.com/m\n\ngo 1.26\n\nreplace example.com/x => example.com/y v1.0.0 // fork\n")
		if _, err := compileInputs(args, env, ""); err != nil {
			t.Fatal(err)
		}
	})
}

func TestInputsJustChangedAreRacy(t *testing.T) {
	tempModule(t)
	args, env := goCommand("./cmd/app", "out", "linux", "amd64", "", false)
	if in := mustInputs(t, args, env, ""); !in.racy {
		t.Fatal("files written a moment ago: want racy")
	}
	old := racyWindow
	racyWindow = 0
	defer func() { racyWindow = old }()
	if in := mustInputs(t, args, env, ""); in.racy {
		t.Fatal("racy with no window")
	}
}

func TestStampFollowsTheBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bin")
	write(t, bin, "binary-1")
	in := inputs{key: "k1"}
	writeStamp(in, bin)
	if !upToDate(in, bin) {
		t.Fatal("stamped binary not up to date")
	}
	if upToDate(inputs{key: "k2"}, bin) {
		t.Fatal("up to date for other inputs")
	}
	if upToDate(inputs{}, bin) {
		t.Fatal("up to date without a fingerprint")
	}
	rewriteKeepingTimes(t, bin, "binary-2")
	if upToDate(in, bin) {
		t.Fatal("a rewritten binary (same size and modification time) still up to date")
	}
	writeStamp(in, bin)
	os.Remove(bin)
	write(t, bin, "binary-2")
	if upToDate(in, bin) {
		t.Fatal("a replaced binary still up to date")
	}
	os.Remove(bin + stampSuffix)
	writeStamp(inputs{key: "k1", racy: true}, bin)
	if _, err := os.Stat(bin + stampSuffix); err == nil {
		t.Fatal("racy inputs stamped")
	}
	os.Remove(bin)
	if upToDate(in, bin) {
		t.Fatal("a missing binary up to date")
	}
}

// TestCompileChangedRunsGoExactlyWhenNeeded compiles a small main with the
// real go command: the binary is rebuilt after every kind of change, and
// only then.
func TestCompileChangedRunsGoExactlyWhenNeeded(t *testing.T) {
	dir := tempModule(t)
	old := racyWindow
	racyWindow = 0 // the files were written a moment ago
	defer func() { racyWindow = old }()
	out := filepath.Join(dir, ".testship", "build", "app")
	ctx := context.Background()
	sum := func() [32]byte {
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	step := func(what string, wantRan bool) {
		t.Helper()
		ran, err := compileChanged(ctx, ".testship", "./cmd/app", out, "linux", "amd64", "", false)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ran != wantRan {
			t.Fatalf("%s: go ran = %v, want %v", what, ran, wantRan)
		}
	}
	step("first compile", true)
	first := sum()
	firstBin, _ := os.ReadFile(out)
	step("nothing changed", false)
	step("nothing changed, again", false)

	rewriteKeepingTimes(t, filepath.Join(dir, "cmd", "app", "main.go"), "package main\n\nfunc main() { println(\"v2\") }\n")
	step("source edited (same size, modification time put back)", true)
	second := sum()
	if second == first {
		t.Fatal("the edit did not reach the binary")
	}
	step("nothing changed after the edit", false)

	if err := os.WriteFile(out, firstBin, 0o755); err != nil { // the first build, copied back in place
		t.Fatal(err)
	}
	step("binary overwritten", true)
	if sum() != second {
		t.Fatal("the overwritten binary was not rebuilt")
	}
	step("nothing changed after the rebuild", false)

	t.Setenv("GOFLAGS", "-ldflags=-X=main.unused=1")
	step("GOFLAGS changed", true)
	step("nothing changed after GOFLAGS", false)

	ran, err := compileChanged(ctx, ".testship", "./cmd/app", out, "linux", "arm64", "", false)
	if err != nil || !ran {
		t.Fatalf("another architecture: ran=%v err=%v", ran, err)
	}

	write(t, filepath.Join(dir, "cmd", "app", "main.go"), "package main\n\nfunc main() { undefinedThing() }\n")
	if _, err := compileChanged(ctx, ".testship", "./cmd/app", out, "linux", "arm64", "", false); err == nil {
		t.Fatal("a compile error was not reported")
	}
	if _, err := os.Stat(out + stampSuffix); err == nil {
		t.Fatal("a failed compile left its stamp")
	}
}
