//go:build linux

package devstack

import (
	"context"
	"crypto/x509"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// flagValues maps --name=value flags to their values.
func flagValues(t *testing.T, args []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || !strings.HasPrefix(k, "--") {
			t.Fatalf("flag %q is not --name=value", a)
		}
		if _, dup := m[k]; dup {
			t.Errorf("flag %s given twice", k)
		}
		m[k] = v
	}
	return m
}

func TestEtcdAndAPIServerFlags(t *testing.T) {
	s := testStack(t)
	pk := s.pki.dir
	etcd := flagValues(t, s.daemon("etcd").args)
	for k, want := range map[string]string{
		"--listen-client-urls":          "https://127.0.0.1:2379",
		"--advertise-client-urls":       "https://127.0.0.1:2379",
		"--cert-file":                   filepath.Join(pk, "etcd-server.crt"),
		"--key-file":                    filepath.Join(pk, "etcd-server.key"),
		"--client-cert-auth":            "true",
		"--trusted-ca-file":             filepath.Join(pk, "ca.crt"),
		"--listen-peer-urls":            "http://127.0.0.1:2380",
		"--initial-advertise-peer-urls": "http://127.0.0.1:2380",
		"--data-dir":                    s.path("etcd"),
	} {
		if etcd[k] != want {
			t.Errorf("etcd %s = %q, want %q", k, etcd[k], want)
		}
	}
	for k, v := range etcd {
		if strings.Contains(v, "http://") && !strings.Contains(k, "peer") && k != "--initial-cluster" {
			t.Errorf("etcd %s=%s serves clients in plain HTTP", k, v)
		}
		if strings.Contains(v, "://") && !strings.Contains(v, "://127.0.0.1:") {
			t.Errorf("etcd %s=%s listens beyond loopback", k, v)
		}
	}
	if _, ok := etcd["--auto-tls"]; ok {
		t.Error("etcd uses --auto-tls (self-signed, unverifiable) instead of the stack's CA")
	}

	api := flagValues(t, s.daemon("kube-apiserver").args)
	for k, want := range map[string]string{
		"--etcd-servers":   "https://127.0.0.1:2379",
		"--etcd-cafile":    filepath.Join(pk, "ca.crt"),
		"--etcd-certfile":  filepath.Join(pk, "apiserver-etcd-client.crt"),
		"--etcd-keyfile":   filepath.Join(pk, "apiserver-etcd-client.key"),
		"--client-ca-file": filepath.Join(pk, "ca.crt"),
	} {
		if api[k] != want {
			t.Errorf("kube-apiserver %s = %q, want %q", k, api[k], want)
		}
	}
}

// TestPKIAddsEtcdCertsKeepingTheRest: a PKI made before etcd had TLS gets
// etcd's certificates; every other file stays byte for byte, and only etcd
// and the apiserver are marked for restart.
func TestPKIAddsEtcdCertsKeepingTheRest(t *testing.T) {
	s := testStack(t)
	ctx := context.Background()
	if _, err := s.ensurePKI(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"etcd-server.crt", "etcd-server.key", "apiserver-etcd-client.crt", "apiserver-etcd-client.key"} {
		if err := os.Remove(s.pki.path(f)); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, s.o.Dir)
	s.restart = map[string]string{}
	res, err := s.ensurePKI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != Built || !strings.Contains(res.Detail, "etcd-server, apiserver-etcd-client") {
		t.Errorf("ensurePKI = %+v, want it to name the two new certificates", res)
	}
	after := snapshot(t, s.o.Dir)
	var changed []string
	for f, v := range after {
		if before[f] != v {
			changed = append(changed, f)
		}
	}
	slices.Sort(changed)
	want := []string{"pki/apiserver-etcd-client.crt", "pki/apiserver-etcd-client.key", "pki/etcd-server.crt", "pki/etcd-server.key"}
	if !slices.Equal(changed, want) {
		t.Errorf("changed files %v, want only %v", changed, want)
	}
	if got := slices.Sorted(maps.Keys(s.restart)); !slices.Equal(got, []string{"etcd", "kube-apiserver"}) {
		t.Errorf("restart %v, want [etcd kube-apiserver]", got)
	}

	ca, _ := readCert(s.pki.path("ca.crt"))
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	srv, _ := readCert(s.pki.path("etcd-server.crt"))
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if _, err := srv.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("etcd server certificate for %s: %v", host, err)
		}
	}
	// etcd's JSON gateway dials etcd's own gRPC port with this certificate.
	if _, err := srv.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("etcd server certificate is not also a client certificate: %v", err)
	}
	if _, err := srv.Verify(x509.VerifyOptions{DNSName: s.nodeIP, Roots: roots}); err == nil {
		t.Errorf("etcd server certificate names the node IP %s: etcd must stay on loopback", s.nodeIP)
	}
	cl, _ := readCert(s.pki.path("apiserver-etcd-client.crt"))
	if _, err := cl.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("apiserver etcd client certificate: %v", err)
	}

	// Up to date now: nothing more is generated or restarted.
	s.restart = map[string]string{}
	if res, err := s.ensurePKI(ctx); err != nil || res.Action != Kept || len(s.restart) != 0 {
		t.Errorf("third ensurePKI = %+v, %v, restart %v; want ok, nothing restarted", res, err, s.restart)
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		m[rel] = string(raw)
		return nil
	})
	return m
}

func TestEnsureRestartsOnChangedCommandLine(t *testing.T) {
	s := testStack(t)
	d := &daemon{name: "sleeper", bin: "/bin/sleep", args: []string{"60"}, timeout: 5 * time.Second, grace: time.Second}
	d.health = alive(s, d)
	ctx := context.Background()
	if res, err := s.ensure(ctx, *d); err != nil || res.Action != Started {
		t.Fatalf("first ensure: %+v, %v", res, err)
	}
	old, _, _ := s.pidFile(*d).running()
	t.Cleanup(func() { s.stop(*d) })
	d.args = []string{"61"}
	res, err := s.ensure(ctx, *d)
	if err != nil || res.Action != Started || !strings.Contains(res.Detail, "command line changed") {
		t.Fatalf("ensure with new flags: %+v, %v; want a restart saying the command line changed", res, err)
	}
	if _, ok := readProc(old.PID); ok {
		t.Errorf("old PID %d still runs", old.PID)
	}
	p, _, _ := s.pidFile(*d).running()
	if !slices.Equal(p.Argv, []string{"/bin/sleep", "61"}) {
		t.Errorf("running %v, want /bin/sleep 61", p.Argv)
	}
}

func TestMountPointsUnder(t *testing.T) {
	dir := "/var/lib/testship/dev"
	mi := strings.Join([]string{
		"36 35 98:0 / / rw - ext4 /dev/root rw",
		"40 36 0:30 / /var/lib/testship/dev/kubelet/root/pods/x/volumes/v rw - tmpfs tmpfs rw",
		"41 36 0:31 / /var/lib/testship/dev/containerd/state/io.containerd.runtime.v2.task/k8s.io/c1/rootfs rw - overlay overlay rw",
		"42 36 0:32 / /var/lib/testship/dev/user-mount rw - tmpfs tmpfs rw",
		"43 36 0:33 / /var/lib/testship/dev-other/kubelet/x rw - tmpfs tmpfs rw",
		"44 36 0:34 / /var/lib/testship/dev rw - ext4 /dev/sdb rw",
		"45 36 0:35 / /var/lib/testship/dev/kubelet/root/with\\040space rw - tmpfs tmpfs rw",
		"46 36 0:30 / /var/lib/testship/dev/kubelet/root/pods/x/volumes/v rw - tmpfs tmpfs rw",
	}, "\n")
	got := mountPointsUnder(mi, mountRoots(dir))
	want := []string{
		"/var/lib/testship/dev/containerd/state/io.containerd.runtime.v2.task/k8s.io/c1/rootfs",
		"/var/lib/testship/dev/kubelet/root/pods/x/volumes/v",
		"/var/lib/testship/dev/kubelet/root/with space",
	}
	if !slices.Equal(got, want) {
		t.Errorf("mounts to unmount:\n got  %q\n want %q", got, want)
	}
}
