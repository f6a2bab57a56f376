//go:build e2e && linux

package devstack

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// etcdKV puts (value != "") or reads key through etcd's v3 JSON gateway at
// addr with client c, returning the value read.
func etcdKV(ctx context.Context, c *http.Client, scheme, addr, key, value string) (string, error) {
	b64 := base64.StdEncoding.EncodeToString
	path, body := "/v3/kv/range", map[string]string{"key": b64([]byte(key))}
	if value != "" {
		path, body["value"] = "/v3/kv/put", b64([]byte(value))
	}
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, scheme+"://"+addr+path, bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST %s: %s %s", path, resp.Status, strings.TrimSpace(string(out)))
	}
	if value != "" {
		return "", nil
	}
	var r struct {
		KVs []struct{ Value string } `json:"kvs"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return "", fmt.Errorf("range answer %q: %w", out, err)
	}
	if len(r.KVs) != 1 {
		return "", fmt.Errorf("range answer %s: want one key", out)
	}
	v, err := base64.StdEncoding.DecodeString(r.KVs[0].Value)
	return string(v), err
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startEtcd starts bin with args, output in logPath, waits until healthy
// passes and returns a function stopping it (also run at the end of the
// test).
func startEtcd(t *testing.T, bin string, args []string, logPath string, healthy func(context.Context) error) (stop func()) {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		}
	}
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		err := healthy(ctx)
		if err == nil {
			return stop
		}
		select {
		case werr := <-exited:
			exited <- werr
			t.Fatalf("etcd exited (%v); last health check: %v\n%s", werr, err, tailFile(logPath, 20))
		case <-ctx.Done():
			t.Fatalf("etcd not healthy: %v\n%s", err, tailFile(logPath, 20))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestSeparateEtcdTLS starts an etcd of its own (Debian's etcd-server, on
// free loopback ports, in a temp dir; the shared stack's etcd is not
// touched) with the flags and PKI the stack uses, and checks that it
// refuses plain HTTP, TLS without a client certificate and a certificate
// from another CA, and serves a client holding the stack's client
// certificate.
func TestSeparateEtcdTLS(t *testing.T) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("no etcd binary (%v): install Debian's etcd-server (dev:up does)", err)
	}
	dir := t.TempDir()
	p := pki{dir: filepath.Join(dir, "pki"), nodeName: "etcd-tls-test", nodeIP: net.ParseIP("127.0.0.1")}
	if _, err := p.generate(); err != nil {
		t.Fatal(err)
	}
	clientAddr, peerAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	logPath := filepath.Join(dir, "etcd.log")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	startEtcd(t, bin, etcdArgs(p, filepath.Join(dir, "etcd"), clientAddr, peerAddr), logPath,
		func(ctx context.Context) error { return etcdHealthy(ctx, p, clientAddr) })
	t.Logf("etcd %s on %s (peer %s) healthy with the client certificate", bin, clientAddr, peerAddr)

	good, err := p.etcdTLS()
	if err != nil {
		t.Fatal(err)
	}
	client := func(cfg *tls.Config) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	key, value := "testship/devstack-tls", "written at "+time.Now().UTC().Format(time.RFC3339Nano)

	// With the stack's client certificate: put, then get it back.
	if _, err := etcdKV(ctx, client(good), "https", clientAddr, key, value); err != nil {
		t.Fatalf("put with the client certificate: %v\n%s", err, tailFile(logPath, 10))
	}
	if got, err := etcdKV(ctx, client(good), "https", clientAddr, key, ""); err != nil || got != value {
		t.Fatalf("get with the client certificate = %q, %v; want %q", got, err, value)
	}

	// Plain HTTP.
	if got, err := etcdKV(ctx, &http.Client{Timeout: 5 * time.Second}, "http", clientAddr, key, ""); err == nil {
		t.Errorf("plain HTTP read the key (%q): etcd must serve TLS only", got)
	} else {
		t.Logf("plain HTTP refused: %v", err)
	}
	if _, err := etcdKV(ctx, &http.Client{Timeout: 5 * time.Second}, "http", clientAddr, key, "overwritten in plain HTTP"); err == nil {
		t.Error("plain HTTP wrote the key")
	}

	// TLS that trusts the CA but presents no certificate.
	noCert := &tls.Config{RootCAs: good.RootCAs}
	if got, err := etcdKV(ctx, client(noCert), "https", clientAddr, key, ""); err == nil {
		t.Errorf("TLS without a client certificate read the key (%q)", got)
	} else {
		t.Logf("TLS without a client certificate refused: %v", err)
	}

	// A client certificate signed by another CA.
	other := pki{dir: filepath.Join(dir, "other-pki"), nodeName: "other", nodeIP: net.ParseIP("127.0.0.1")}
	if _, err := other.generate(); err != nil {
		t.Fatal(err)
	}
	foreign, err := other.etcdTLS()
	if err != nil {
		t.Fatal(err)
	}
	foreign.RootCAs = good.RootCAs // trust the server; present the wrong client
	if got, err := etcdKV(ctx, client(foreign), "https", clientAddr, key, ""); err == nil {
		t.Errorf("a client certificate from another CA read the key (%q)", got)
	} else {
		t.Logf("client certificate from another CA refused: %v", err)
	}

	// The value is still the one written with the right certificate.
	if got, err := etcdKV(ctx, client(good), "https", clientAddr, key, ""); err != nil || got != value {
		t.Errorf("after the refused clients the key is %q, %v; want %q", got, err, value)
	}
}

// TestSeparateEtcdSwitchToTLSKeepsData replays what dev:up does to a stack
// made before etcd had TLS: an etcd serving plain HTTP (the old flags)
// holds a key; restarted on the same data dir with the TLS flags, it still
// holds it, and only a client with the certificate reads it.
func TestSeparateEtcdSwitchToTLSKeepsData(t *testing.T) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("no etcd binary (%v): install Debian's etcd-server (dev:up does)", err)
	}
	dir := t.TempDir()
	p := pki{dir: filepath.Join(dir, "pki"), nodeName: "etcd-tls-test", nodeIP: net.ParseIP("127.0.0.1")}
	if _, err := p.generate(); err != nil {
		t.Fatal(err)
	}
	clientAddr, peerAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	dataDir, logPath := filepath.Join(dir, "etcd"), filepath.Join(dir, "etcd.log")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	plain := &http.Client{Timeout: 5 * time.Second}
	// The flags of testship before TLS.
	oldArgs := []string{
		"--name=testship", "--data-dir=" + dataDir,
		"--listen-client-urls=http://" + clientAddr, "--advertise-client-urls=http://" + clientAddr,
		"--listen-peer-urls=http://" + peerAddr, "--initial-advertise-peer-urls=http://" + peerAddr,
		"--initial-cluster=testship=http://" + peerAddr,
		"--logger=zap", "--log-outputs=stderr",
	}
	stop := startEtcd(t, bin, oldArgs, logPath, func(ctx context.Context) error {
		return httpOK(ctx, plain, "http://"+clientAddr+"/health")
	})
	key, value := "testship/before-tls", "kept"
	if _, err := etcdKV(ctx, plain, "http", clientAddr, key, value); err != nil {
		t.Fatalf("put in plain HTTP on the old etcd: %v", err)
	}
	stop()

	startEtcd(t, bin, etcdArgs(p, dataDir, clientAddr, peerAddr), logPath,
		func(ctx context.Context) error { return etcdHealthy(ctx, p, clientAddr) })
	good, err := p.etcdTLS()
	if err != nil {
		t.Fatal(err)
	}
	tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: good}}
	if got, err := etcdKV(ctx, tlsClient, "https", clientAddr, key, ""); err != nil || got != value {
		t.Fatalf("after the switch to TLS the key is %q, %v; want %q\n%s", got, err, value, tailFile(logPath, 10))
	}
	if _, err := etcdKV(ctx, plain, "http", clientAddr, key, ""); err == nil {
		t.Error("after the switch to TLS plain HTTP still reads the key")
	}
}
