package devstack

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// certSpec describes one certificate signed by the stack's CA.
type certSpec struct {
	name   string // file stem under pki/
	cn     string
	orgs   []string
	client bool
	server bool
	dns    []string
	ips    []net.IP
}

// pki is the stack's certificate authority and the certificates and
// kubeconfigs of its components, all under <dir>/pki and <dir>/kubeconfigs.
type pki struct {
	dir      string // <devdir>/pki
	nodeName string
	nodeIP   net.IP
}

func (p pki) path(name string) string { return filepath.Join(p.dir, name) }

func (p pki) specs() []certSpec {
	return []certSpec{
		{name: "apiserver", cn: "kube-apiserver", server: true,
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", p.nodeName},
			ips: []net.IP{net.ParseIP("127.0.0.1"), p.nodeIP, net.ParseIP(serviceIP)}},
		{name: "admin", cn: "testship-admin", orgs: []string{"system:masters"}, client: true},
		{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, client: true},
		{name: "controller-manager", cn: "system:kube-controller-manager", client: true},
		{name: "scheduler", cn: "system:kube-scheduler", client: true},
		{name: "kube-proxy", cn: "system:kube-proxy", client: true},
		{name: "kubelet-client", cn: "system:node:" + p.nodeName, orgs: []string{"system:nodes"}, client: true},
		{name: "kubelet", cn: p.nodeName, server: true,
			dns: []string{p.nodeName, "localhost"}, ips: []net.IP{p.nodeIP, net.ParseIP("127.0.0.1")}},
		// etcd serves its clients on loopback only. Its certificate is
		// also a client certificate: etcd's HTTP gateway (/v3/..., /health)
		// dials etcd's own gRPC port with it.
		{name: "etcd-server", cn: "testship-etcd", server: true, client: true,
			dns: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}},
		{name: "apiserver-etcd-client", cn: "kube-apiserver-etcd-client", client: true},
	}
}

// staleCert is a file of the PKI to (re)generate and why.
type staleCert struct {
	name string // a certSpec name, "ca" or "sa"
	why  string
}

// stale lists what must be (re)generated, in spec order: nothing when every
// file exists, no certificate expires within a day and the serving
// certificates name the current addresses. A missing CA makes everything
// stale; a certificate added by a newer testship (e.g. etcd's) is stale
// alone, so adding it leaves the others as they are.
func (p pki) stale() []staleCert {
	var out []staleCert
	for _, f := range []string{"ca.crt", "ca.key"} {
		if _, err := os.Stat(p.path(f)); err != nil {
			out = append(out, staleCert{"ca", "missing " + f})
			for _, s := range p.specs() {
				out = append(out, staleCert{s.name, "new CA"})
			}
			return append(out, staleCert{"sa", "new CA"})
		}
	}
	ca, err := readCert(p.path("ca.crt"))
	if err != nil {
		out = append(out, staleCert{"ca", "unreadable ca.crt"})
		for _, s := range p.specs() {
			out = append(out, staleCert{s.name, "new CA"})
		}
		return append(out, staleCert{"sa", "new CA"})
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, f := range []string{"sa.key", "sa.pub"} {
		if _, err := os.Stat(p.path(f)); err != nil {
			out = append(out, staleCert{"sa", "missing " + f})
			break
		}
	}
	for _, s := range p.specs() {
		if why := p.certStale(s, pool); why != "" {
			out = append(out, staleCert{s.name, why})
		}
	}
	return out
}

func (p pki) certStale(s certSpec, roots *x509.CertPool) string {
	cert, err := readCert(p.path(s.name + ".crt"))
	if err != nil {
		return fmt.Sprintf("missing %s.crt", s.name)
	}
	if _, err := os.Stat(p.path(s.name + ".key")); err != nil {
		return fmt.Sprintf("missing %s.key", s.name)
	}
	if time.Until(cert.NotAfter) < 24*time.Hour {
		return s.name + ".crt expires soon"
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return s.name + ".crt is not signed by ca.crt"
	}
	for _, ip := range s.ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return fmt.Sprintf("%s.crt does not name %s", s.name, ip)
		}
	}
	for _, dns := range s.dns {
		if !slices.Contains(cert.DNSNames, dns) {
			return fmt.Sprintf("%s.crt does not name %s", s.name, dns)
		}
	}
	if s.client && cert.Subject.CommonName != s.cn {
		return fmt.Sprintf("%s.crt is for %s, not %s", s.name, cert.Subject.CommonName, s.cn)
	}
	return ""
}

// upToDate reports why the PKI must be (re)generated, or "" when it need
// not be.
func (p pki) upToDate() string {
	st := p.stale()
	if len(st) == 0 {
		return ""
	}
	return st[0].why
}

// generate (re)generates what stale lists (the CA is kept when present,
// and so is every certificate that is still good) and returns the names
// it wrote: "ca", "sa" and certificate names.
func (p pki) generate() ([]string, error) {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, err
	}
	st := p.stale()
	if len(st) == 0 {
		return nil, nil
	}
	need := map[string]bool{}
	for _, c := range st {
		need[c.name] = true
	}
	var wrote []string
	caCert, caKey, err := p.loadCA()
	if need["ca"] || err != nil {
		if caCert, caKey, err = p.newCA(); err != nil {
			return nil, err
		}
		wrote = append(wrote, "ca")
		need["sa"] = true
		for _, s := range p.specs() {
			need[s.name] = true
		}
	}
	if need["sa"] {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return wrote, err
		}
		if err := writeKey(p.path("sa.key"), key); err != nil {
			return wrote, err
		}
		pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return wrote, err
		}
		if err := os.WriteFile(p.path("sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
			return wrote, err
		}
		wrote = append(wrote, "sa")
	}
	for _, s := range p.specs() {
		if !need[s.name] {
			continue
		}
		if err := p.issue(s, caCert, caKey); err != nil {
			return wrote, err
		}
		wrote = append(wrote, s.name)
	}
	return wrote, nil
}

// issue writes a new key and a certificate for s signed by the CA.
func (p pki) issue(s certSpec, caCert *x509.Certificate, caKey crypto.Signer) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		DNSNames:     s.dns,
		IPAddresses:  s.ips,
	}
	if s.client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	if s.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("sign %s certificate: %w", s.name, err)
	}
	if err := writeKey(p.path(s.name+".key"), key); err != nil {
		return err
	}
	return os.WriteFile(p.path(s.name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func (p pki) newCA() (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "testship-dev-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	if err := writeKey(p.path("ca.key"), key); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(p.path("ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func (p pki) loadCA() (*x509.Certificate, crypto.Signer, error) {
	cert, err := readCert(p.path("ca.crt"))
	if err != nil {
		return nil, nil, err
	}
	raw, err := os.ReadFile(p.path("ca.key"))
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, nil, errors.New("ca.key: no PEM data")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("ca.key: not a signing key")
	}
	return cert, signer, nil
}

func readCert(path string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parsePEMCert(raw, path)
}

func parsePEMCert(raw []byte, name string) (*x509.Certificate, error) {
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM data", name)
	}
	return x509.ParseCertificate(block.Bytes)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// writeKubeconfig writes a kubeconfig for the named client certificate,
// embedding the CA, certificate and key so the file stands alone.
func (p pki) writeKubeconfig(path, certName, server string) error {
	ca, err := os.ReadFile(p.path("ca.crt"))
	if err != nil {
		return err
	}
	cert, err := os.ReadFile(p.path(certName + ".crt"))
	if err != nil {
		return err
	}
	key, err := os.ReadFile(p.path(certName + ".key"))
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testship-dev"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos[certName] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["testship-dev"] = &clientcmdapi.Context{Cluster: "testship-dev", AuthInfo: certName}
	cfg.CurrentContext = "testship-dev"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}
