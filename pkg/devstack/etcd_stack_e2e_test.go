//go:build e2e && linux

package devstack

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/testship/testship/internal/e2e"
)

// TestStackEtcdRequiresClientCert checks, on the running local stack
// (read-only), that etcd on 127.0.0.1:2379 refuses plain HTTP and a TLS
// client without a certificate, answers one holding the stack's etcd
// client certificate, and that the state dir carries testship's marker.
// It fails when the stack is down.
func TestStackEtcdRequiresClientCert(t *testing.T) {
	dir := e2e.DevDir()
	if ok, err := hasMarker(dir); !ok {
		t.Errorf("state dir %s has no %s marker (%v): dev:up of this testship writes it", dir, MarkerFile, err)
	}
	conn, err := net.DialTimeout("tcp", etcdClientAddr, 3*time.Second)
	if err != nil {
		t.Fatalf("the local stack's etcd does not listen on %s (%v): bring the stack up with `mage dev:up`", etcdClientAddr, err)
	}
	conn.Close()
	p := pki{dir: filepath.Join(dir, "pki")}
	good, err := p.etcdTLS()
	if err != nil {
		t.Fatalf("the stack has no etcd client certificate (%v): restart it with `mage dev:up` from this testship", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := etcdHealthy(ctx, p, etcdClientAddr); err != nil {
		t.Fatalf("etcd with the stack's client certificate: %v", err)
	}

	url := "://" + etcdClientAddr + "/health"
	plain := &http.Client{Timeout: 5 * time.Second}
	if err := httpOK(ctx, plain, "http"+url); err == nil {
		t.Errorf("etcd answered plain HTTP on %s: it must serve TLS only", etcdClientAddr)
	} else {
		t.Logf("plain HTTP refused: %v", err)
	}
	noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: good.RootCAs}}}
	if err := httpOK(ctx, noCert, "https"+url); err == nil {
		t.Errorf("etcd answered a TLS client without a certificate on %s", etcdClientAddr)
	} else {
		t.Logf("TLS without a client certificate refused: %v", err)
	}
}
