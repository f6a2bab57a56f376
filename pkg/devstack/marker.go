package devstack

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// MarkerFile is the file dev:up writes in the state directory it creates.
// Only a directory holding it is ever stopped, unmounted or wiped by
// dev:down, so a mistyped TESTSHIP_DEV_DIR cannot make testship act on a
// directory it did not make.
const MarkerFile = ".testship-dev"

// markerHeader is the first line of the marker; the rest says when and how
// the directory was claimed.
const markerHeader = "testship local stack state directory"

// subPaths are the entries of the state directory the stack owns, and the
// only ones dev:down touches. Everything else in the directory is left
// alone. Keep it in step with the paths the stack writes (s.path(...)).
var subPaths = []struct {
	name string
	wipe bool // deleted by DEV_WIPE=true dev:down
}{
	{"pki", true},         // CA, component certificates, service-account key
	{"kubeconfigs", true}, // the components' kubeconfigs
	{"kubeconfig", true},  // the admin kubeconfig
	{"etcd", true},        // etcd's data dir
	{"registry", true},    // registry config and blobs
	{"containerd", true},  // containerd config, root (images, rootfs mounts), state
	{"kubelet", true},     // kubelet config, root (volume mounts), pod logs
	{"kube-proxy", true},  // kube-proxy config
	{"coredns", true},     // Corefile
	{"cni", true},         // CNI config and IP allocations
	{"run", true},         // PID files, containerd socket
	{"logs", false},       // component logs: kept for the post-mortem
	{".lock", false},      // serialises dev:up/dev:down
	{MarkerFile, false},   // the marker itself
}

// wipePaths returns the absolute paths DEV_WIPE deletes under dir.
func wipePaths(dir string) []string {
	var out []string
	for _, p := range subPaths {
		if p.wipe {
			out = append(out, filepath.Join(dir, p.name))
		}
	}
	return out
}

// removeKnown deletes dir's wipePaths (each one as a whole: a symbolic
// link is removed, not followed) and returns the names removed and the
// failures.
func removeKnown(dir string) (removed, failed []string) {
	for _, p := range wipePaths(dir) {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			failed = append(failed, err.Error())
		} else {
			removed = append(removed, filepath.Base(p))
		}
	}
	return removed, failed
}

// mountRoots returns the sub-directories of dir under which dev:down
// unmounts (the kubelet's volumes, containerd's rootfs and shm mounts and
// anything else the stack mounted lives under one of them).
func mountRoots(dir string) []string {
	var out []string
	for _, p := range subPaths {
		if p.name != MarkerFile && p.name != ".lock" && p.name != "kubeconfig" {
			out = append(out, filepath.Join(dir, p.name))
		}
	}
	return out
}

// hasMarker reports whether dir holds testship's marker: a regular file
// (not a link) starting with markerHeader.
func hasMarker(dir string) (bool, error) {
	path := filepath.Join(dir, MarkerFile)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("%s is not a regular file (%s): testship does not trust it as its marker; remove it", path, fi.Mode().Type())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	if !strings.HasPrefix(string(raw), markerHeader) {
		return false, fmt.Errorf("%s does not start with %q: testship did not write it; remove it or choose another TESTSHIP_DEV_DIR", path, markerHeader)
	}
	return true, nil
}

func writeMarker(dir, how string) error {
	content := fmt.Sprintf("%s\n%s: %s\nDo not delete: without this file testship's dev:down refuses to touch this directory.\n",
		markerHeader, how, time.Now().UTC().Format(time.RFC3339))
	return os.WriteFile(filepath.Join(dir, MarkerFile), []byte(content), 0o644)
}

// emptyForClaim reports whether dir holds nothing but a lock file (which a
// run of an older testship that failed at once may leave).
func emptyForClaim(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.Name() != ".lock" {
			return false, nil
		}
	}
	return true, nil
}

// oldLayout reports whether dir is a stack made by a testship that wrote
// no marker: its pki/ca.crt exists and its admin kubeconfig holds a client
// certificate that CA signed. Nothing but testship makes that pair.
func oldLayout(dir string) bool {
	ca, err := readCert(filepath.Join(dir, "pki", "ca.crt"))
	if err != nil {
		return false
	}
	cfg, err := clientcmd.LoadFromFile(Kubeconfig(dir))
	if err != nil {
		return false
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, ai := range cfg.AuthInfos {
		cert, err := parseCertPEM(ai.ClientCertificateData)
		if err != nil {
			continue
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
			return true
		}
	}
	return false
}

// claimDir makes dir the stack's state directory before dev:up writes
// anything in it: a missing or empty directory is created and marked; a
// marked one is used as is; one in the layout of an older testship (no
// marker yet) is adopted by writing the marker, said once on out; anything
// else is refused.
func claimDir(dir string, out io.Writer) error {
	ok, err := hasMarker(dir)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create TESTSHIP_DEV_DIR %s: %w", dir, err)
		}
		return writeMarker(dir, "created by testship dev:up")
	case err != nil:
		return fmt.Errorf("TESTSHIP_DEV_DIR %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("TESTSHIP_DEV_DIR=%s is not a directory: set TESTSHIP_DEV_DIR to a new or empty directory for the local stack", dir)
	}
	empty, err := emptyForClaim(dir)
	if err != nil {
		return fmt.Errorf("TESTSHIP_DEV_DIR %s: %w", dir, err)
	}
	if empty {
		return writeMarker(dir, "created by testship dev:up")
	}
	if oldLayout(dir) {
		if err := writeMarker(dir, "adopted by testship dev:up (made by an older testship, before the marker existed)"); err != nil {
			return err
		}
		fmt.Fprintf(out, "adopted %s: a local stack made by an older testship (its pki/ca.crt signed its kubeconfig); wrote the marker %s\n", dir, MarkerFile)
		return nil
	}
	return fmt.Errorf("TESTSHIP_DEV_DIR=%s is not empty and testship did not create it (no %s marker): dev:up only uses a new or empty directory, or one it made; set TESTSHIP_DEV_DIR to a new directory (e.g. /var/lib/testship/dev), or empty this one yourself if it is yours to empty", dir, MarkerFile)
}

// downAllowed says whether dev:down may act for dir: not when it is
// missing or empty (no stack was ever there: nothing to do), an error when
// it lacks the marker, yes when it has it.
func downAllowed(dir string) (proceed bool, err error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if empty, err := emptyForClaim(dir); err == nil && empty {
		return false, nil
	}
	if err := requireMarker(dir); err != nil {
		return false, err
	}
	return true, nil
}

// requireMarker refuses, before dev:down touches anything, a directory
// testship did not create.
func requireMarker(dir string) error {
	ok, err := hasMarker(dir)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	hint := "set TESTSHIP_DEV_DIR to the directory dev:up created"
	if oldLayout(dir) {
		hint = "it looks like a stack made by an older testship: run dev:up once (it adopts the directory by writing the marker), then dev:down"
	}
	return fmt.Errorf("dev:down refuses TESTSHIP_DEV_DIR=%s: it has no %s marker, so testship cannot prove it created it and will not stop, unmount or delete anything for it; %s", dir, MarkerFile, hint)
}

func parseCertPEM(raw []byte) (*x509.Certificate, error) {
	if len(raw) == 0 {
		return nil, errors.New("no certificate data")
	}
	return parsePEMCert(raw, "certificate")
}
