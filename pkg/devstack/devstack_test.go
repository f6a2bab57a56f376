package devstack

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

func TestPKIGenerateAndUpToDate(t *testing.T) {
	dir := t.TempDir()
	p := pki{dir: filepath.Join(dir, "pki"), nodeName: "node1", nodeIP: net.ParseIP("192.0.2.7")}
	if why := p.upToDate(); why == "" {
		t.Fatal("empty PKI dir reported up to date")
	}
	if _, err := p.generate(); err != nil {
		t.Fatal(err)
	}
	if why := p.upToDate(); why != "" {
		t.Fatalf("fresh PKI not up to date: %s", why)
	}
	ca, err := readCert(p.path("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	api, err := readCert(p.path("apiserver.crt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"kubernetes.default.svc.cluster.local", "10.0.0.1", "192.0.2.7", "127.0.0.1"} {
		if _, err := api.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("apiserver cert does not verify for %s: %v", host, err)
		}
	}
	kc, err := readCert(p.path("kubelet-client.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if kc.Subject.CommonName != "system:node:node1" || len(kc.Subject.Organization) != 1 || kc.Subject.Organization[0] != "system:nodes" {
		t.Errorf("kubelet client subject = %v, want CN=system:node:node1 O=system:nodes", kc.Subject)
	}

	// A new node IP makes the serving certificates outdated; the CA stays.
	p.nodeIP = net.ParseIP("192.0.2.8")
	if why := p.upToDate(); !strings.Contains(why, "192.0.2.8") {
		t.Fatalf("upToDate after IP change = %q, want it to name the new IP", why)
	}
	wrote, err := p.generate()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(wrote, []string{"apiserver", "kubelet"}) {
		t.Errorf("after a node IP change generate wrote %v, want only the certificates naming the IP: [apiserver kubelet]", wrote)
	}
	ca2, _ := readCert(p.path("ca.crt"))
	if !ca2.Equal(ca) {
		t.Error("regenerating leaf certificates replaced the CA")
	}

	path := filepath.Join(dir, "admin.conf")
	if err := p.writeKubeconfig(path, "admin", "https://127.0.0.1:6443"); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || len(cfg.CertData) == 0 || len(cfg.KeyData) == 0 || len(cfg.CAData) == 0 {
		t.Errorf("kubeconfig incomplete: host %q, cert %d B, key %d B, CA %d B", cfg.Host, len(cfg.CertData), len(cfg.KeyData), len(cfg.CAData))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600 (it holds a key)", fi.Mode().Perm())
	}
}

func TestReportSummary(t *testing.T) {
	r := &Report{Took: time.Second, Steps: []StepResult{{Step: "a", Action: Kept}, {Step: "b", Action: Kept}}}
	if len(r.Changed()) != 0 || !strings.HasPrefix(r.Summary("started"), "nothing to do") {
		t.Errorf("all-kept report: changed %v, summary %q", r.Changed(), r.Summary("started"))
	}
	r.Steps = append(r.Steps, StepResult{Step: "etcd", Action: Started})
	if got := r.Changed(); len(got) != 1 || got[0] != "etcd" {
		t.Errorf("Changed() = %v, want [etcd]", got)
	}
	if s := r.Summary("started"); !strings.Contains(s, "1 of 3") || !strings.Contains(s, "etcd") {
		t.Errorf("Summary = %q", s)
	}
}

func TestKubeBinSetFlags(t *testing.T) {
	b := kubeBinSet("/cache")
	if b.dir != "/cache/kube-v1.34.4" {
		t.Errorf("dir = %s", b.dir)
	}
	for _, want := range []string{
		"k8s.io/component-base/version.gitVersion=v1.34.4",
		"k8s.io/component-base/version.gitMinor=34",
		"k8s.io/client-go/pkg/version.gitVersion=v1.34.4",
		"k8s.io/client-go/pkg/version.gitMajor=1",
	} {
		if !strings.Contains(b.ldflags, want) {
			t.Errorf("ldflags lack %s: %s", want, b.ldflags)
		}
	}
	if b.ready() {
		t.Error("ready() true for a cache dir that does not exist")
	}
}

func TestTailFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	os.WriteFile(p, []byte("1\n2\n3\n4\n"), 0o644)
	if got := tailFile(p, 2); got != "    3\n    4" {
		t.Errorf("tailFile = %q", got)
	}
}
