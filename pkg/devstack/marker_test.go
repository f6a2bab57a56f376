package devstack

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readMarker(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, MarkerFile))
	if err != nil {
		t.Fatalf("marker: %v", err)
	}
	return string(raw)
}

func TestClaimDirCreatesAndMarks(t *testing.T) {
	for name, setup := range map[string]func(dir string){
		"missing":   func(dir string) {},
		"empty":     func(dir string) { os.Mkdir(dir, 0o755) },
		"only lock": func(dir string) { os.Mkdir(dir, 0o755); os.WriteFile(filepath.Join(dir, ".lock"), nil, 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "dev")
			setup(dir)
			var out bytes.Buffer
			if err := claimDir(dir, &out); err != nil {
				t.Fatal(err)
			}
			m := readMarker(t, dir)
			if !strings.HasPrefix(m, markerHeader) || !strings.Contains(m, "created by testship dev:up") {
				t.Errorf("marker = %q", m)
			}
			if ok, err := hasMarker(dir); !ok || err != nil {
				t.Errorf("hasMarker = %v, %v after claim", ok, err)
			}
			// A marked directory is used as is, whatever else it holds.
			os.WriteFile(filepath.Join(dir, "kubeconfig"), []byte("x"), 0o600)
			if err := claimDir(dir, &out); err != nil {
				t.Errorf("second claim: %v", err)
			}
			if readMarker(t, dir) != m {
				t.Error("second claim rewrote the marker")
			}
			if out.Len() != 0 {
				t.Errorf("claiming a new directory printed %q", out.String())
			}
		})
	}
}

func TestClaimDirRefusesForeign(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
	err := claimDir(dir, &bytes.Buffer{})
	if err == nil {
		t.Fatal("claimDir accepted a non-empty directory testship did not create")
	}
	for _, want := range []string{"TESTSHIP_DEV_DIR=" + dir, MarkerFile, "new directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, MarkerFile)); err == nil {
		t.Error("refused directory got a marker")
	}

	// A file, not a directory.
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if err := claimDir(f, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("claimDir(file) = %v", err)
	}

	// A marker testship did not write, or a link in its place.
	forged := t.TempDir()
	os.WriteFile(filepath.Join(forged, MarkerFile), []byte("hello"), 0o644)
	if err := claimDir(forged, &bytes.Buffer{}); err == nil {
		t.Error("a marker with foreign content was trusted")
	}
	linked := t.TempDir()
	good := t.TempDir()
	writeMarker(good, "created by testship dev:up")
	os.Symlink(filepath.Join(good, MarkerFile), filepath.Join(linked, MarkerFile))
	if err := claimDir(linked, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a symlinked marker: %v", err)
	}
	if err := requireMarker(linked); err == nil {
		t.Error("requireMarker trusted a symlinked marker")
	}
}

// oldStack lays out dir as a testship without markers left it: the PKI
// and the admin kubeconfig it signed, plus some data.
func oldStack(t *testing.T, dir string) {
	t.Helper()
	p := pki{dir: filepath.Join(dir, "pki"), nodeName: "node1", nodeIP: net.ParseIP("192.0.2.7")}
	if _, err := p.generate(); err != nil {
		t.Fatal(err)
	}
	if err := p.writeKubeconfig(Kubeconfig(dir), "admin", "https://127.0.0.1:6443"); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "etcd", "member"), 0o700)
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
}

func TestClaimDirAdoptsOldLayout(t *testing.T) {
	dir := t.TempDir()
	oldStack(t, dir)
	if err := requireMarker(dir); err == nil || !strings.Contains(err.Error(), "run dev:up once") {
		t.Errorf("dev:down on an old stack: %v, want a refusal telling to run dev:up once", err)
	}
	var out bytes.Buffer
	if err := claimDir(dir, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "adopted "+dir) {
		t.Errorf("adoption not reported: %q", out.String())
	}
	if m := readMarker(t, dir); !strings.Contains(m, "adopted") {
		t.Errorf("marker = %q, want it to say the directory was adopted", m)
	}
	if err := requireMarker(dir); err != nil {
		t.Errorf("requireMarker after adoption: %v", err)
	}
	out.Reset()
	if err := claimDir(dir, &out); err != nil || out.Len() != 0 {
		t.Errorf("second claim: %v, printed %q; want silence", err, out.String())
	}
}

func TestClaimDirRefusesLookalike(t *testing.T) {
	// A kubeconfig signed by another CA than the one in pki/: not ours.
	dir, other := t.TempDir(), t.TempDir()
	oldStack(t, dir)
	oldStack(t, other)
	raw, _ := os.ReadFile(Kubeconfig(other))
	os.WriteFile(Kubeconfig(dir), raw, 0o600)
	if err := claimDir(dir, &bytes.Buffer{}); err == nil {
		t.Error("adopted a directory whose kubeconfig another CA signed")
	}
	// pki/ca.crt without a kubeconfig.
	noKC := t.TempDir()
	oldStack(t, noKC)
	os.Remove(Kubeconfig(noKC))
	if err := claimDir(noKC, &bytes.Buffer{}); err == nil {
		t.Error("adopted a directory without a kubeconfig")
	}
}

func TestRequireMarker(t *testing.T) {
	dir := t.TempDir()
	err := requireMarker(dir)
	if err == nil {
		t.Fatal("requireMarker accepted a directory without a marker")
	}
	for _, want := range []string{"dev:down refuses", "TESTSHIP_DEV_DIR=" + dir, MarkerFile} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	writeMarker(dir, "created by testship dev:up")
	if err := requireMarker(dir); err != nil {
		t.Errorf("marked directory refused: %v", err)
	}
}

func TestRemoveKnownTouchesOnlyKnownSubPaths(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "keep"), []byte("outside"), 0o644)
	writeMarker(dir, "created by testship dev:up")
	for _, p := range subPaths {
		if p.name == MarkerFile {
			continue
		}
		if p.name == "kubeconfig" || p.name == ".lock" {
			os.WriteFile(filepath.Join(dir, p.name), []byte("x"), 0o600)
			continue
		}
		os.MkdirAll(filepath.Join(dir, p.name, "sub"), 0o755)
		os.WriteFile(filepath.Join(dir, p.name, "sub", "f"), []byte("x"), 0o644)
	}
	// Not ours: a user's file and directory in the state dir, and a known
	// name that is a link to a directory elsewhere.
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
	os.MkdirAll(filepath.Join(dir, "backup", "x"), 0o755)
	os.RemoveAll(filepath.Join(dir, "registry"))
	os.Symlink(outside, filepath.Join(dir, "registry"))

	removed, failed := removeKnown(dir)
	if len(failed) > 0 {
		t.Fatalf("failed: %v", failed)
	}
	for _, p := range subPaths {
		_, err := os.Lstat(filepath.Join(dir, p.name))
		if p.wipe && err == nil {
			t.Errorf("%s not removed", p.name)
		}
		if !p.wipe && err != nil {
			t.Errorf("%s removed, want it kept", p.name)
		}
	}
	for _, keep := range []string{"notes.txt", "backup/x", MarkerFile, "logs/sub/f"} {
		if _, err := os.Stat(filepath.Join(dir, keep)); err != nil {
			t.Errorf("%s was touched: %v", keep, err)
		}
	}
	if raw, err := os.ReadFile(filepath.Join(outside, "keep")); err != nil || string(raw) != "outside" {
		t.Errorf("the link's target outside the state dir was touched: %q, %v", raw, err)
	}
	if len(removed) != len(wipePaths(dir)) {
		t.Errorf("removed %v, want every wipe path %v", removed, wipePaths(dir))
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the state dir itself is gone: %v", err)
	}
}

func TestWipeAndMountPathsStayInsideDir(t *testing.T) {
	dir := "/var/lib/testship/dev"
	for _, p := range append(wipePaths(dir), mountRoots(dir)...) {
		if filepath.Dir(p) != dir {
			t.Errorf("%s is not directly inside %s", p, dir)
		}
	}
	for _, p := range wipePaths(dir) {
		switch filepath.Base(p) {
		case "logs", ".lock", MarkerFile:
			t.Errorf("DEV_WIPE would delete %s", p)
		}
	}
}

func TestDownAllowed(t *testing.T) {
	base := t.TempDir()
	if ok, err := downAllowed(filepath.Join(base, "missing")); ok || err != nil {
		t.Errorf("missing dir: %v, %v; want nothing to do", ok, err)
	}
	empty := filepath.Join(base, "empty")
	os.Mkdir(empty, 0o755)
	if ok, err := downAllowed(empty); ok || err != nil {
		t.Errorf("empty dir: %v, %v; want nothing to do", ok, err)
	}
	foreign := filepath.Join(base, "foreign")
	os.MkdirAll(filepath.Join(foreign, "run"), 0o755)
	os.WriteFile(filepath.Join(foreign, "run", "etcd.pid"), []byte("1\n"), 0o644)
	if ok, err := downAllowed(foreign); ok || err == nil || !strings.Contains(err.Error(), "refuses") {
		t.Errorf("unmarked dir with PID files: %v, %v; want a refusal", ok, err)
	}
	old := filepath.Join(base, "old")
	oldStack(t, old)
	if ok, err := downAllowed(old); ok || err == nil {
		t.Errorf("old stack without marker: %v, %v; want a refusal until dev:up adopts it", ok, err)
	}
	writeMarker(foreign, "created by testship dev:up")
	if ok, err := downAllowed(foreign); !ok || err != nil {
		t.Errorf("marked dir: %v, %v; want go", ok, err)
	}
}
