//go:build linux

package devstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"
)

// Loopback addresses of the stack's etcd. Clients speak TLS and must
// present a certificate signed by the stack's CA; the peer port serves no
// one but etcd itself and stays on loopback.
const (
	etcdClientAddr = "127.0.0.1:2379"
	etcdPeerAddr   = "127.0.0.1:2380"
)

// etcdArgs are etcd's flags: TLS with client-certificate authentication on
// clientAddr, certificates from p, data in dataDir. The stack and the test
// that starts a separate etcd both build them here.
func etcdArgs(p pki, dataDir, clientAddr, peerAddr string) []string {
	clientURL, peerURL := "https://"+clientAddr, "http://"+peerAddr
	return []string{
		"--name=testship", "--data-dir=" + dataDir,
		"--listen-client-urls=" + clientURL, "--advertise-client-urls=" + clientURL,
		"--cert-file=" + p.path("etcd-server.crt"),
		"--key-file=" + p.path("etcd-server.key"),
		"--client-cert-auth=true",
		"--trusted-ca-file=" + p.path("ca.crt"),
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=testship=" + peerURL,
		"--logger=zap", "--log-outputs=stderr",
	}
}

// apiserverEtcdArgs are kube-apiserver's flags to reach etcd at
// clientAddr with its own client certificate.
func apiserverEtcdArgs(p pki, clientAddr string) []string {
	return []string{
		"--etcd-servers=https://" + clientAddr,
		"--etcd-cafile=" + p.path("ca.crt"),
		"--etcd-certfile=" + p.path("apiserver-etcd-client.crt"),
		"--etcd-keyfile=" + p.path("apiserver-etcd-client.key"),
	}
}

// etcdTLS is the client TLS configuration for the stack's etcd: the
// stack's CA as the only root, the apiserver's etcd client certificate.
func (p pki) etcdTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(p.path("apiserver-etcd-client.crt"), p.path("apiserver-etcd-client.key"))
	if err != nil {
		return nil, fmt.Errorf("etcd client certificate: %w", err)
	}
	caPEM, err := os.ReadFile(p.path("ca.crt"))
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s: no certificate", p.path("ca.crt"))
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// etcdHealthy asks etcd at addr for /health over TLS with the client
// certificate.
func etcdHealthy(ctx context.Context, p pki, addr string) error {
	cfg, err := p.etcdTLS()
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer c.CloseIdleConnections()
	return httpOK(ctx, c, "https://"+addr+"/health")
}
