//go:build linux

package devstack

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestPortHolderFindsThisProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	h, held := portHolder(port, false, "")
	if !held || h.PID != os.Getpid() {
		t.Fatalf("portHolder(%d) = %v, %v; want this process %d", port, h, held, os.Getpid())
	}
	if _, held := portHolder(port, false, "192.0.2.99"); held {
		t.Error("a socket on 127.0.0.1 counted as holding the port on 192.0.2.99")
	}
	ln.Close()
	if _, held := portHolder(port, false, ""); held {
		t.Error("closed port still reported held")
	}
}

func TestPIDFileStale(t *testing.T) {
	dir := t.TempDir()
	self, _ := os.Executable()
	exe, _ := readProc(os.Getpid())
	pf := pidFile{path: filepath.Join(dir, "x.pid"), bin: exe.Argv[0]}
	if _, ok, stale := pf.running(); ok || stale {
		t.Fatalf("missing PID file: ok=%v stale=%v", ok, stale)
	}
	pf.write(os.Getpid())
	if p, ok, _ := pf.running(); !ok || p.PID != os.Getpid() {
		t.Fatalf("own PID not recognised (bin %s, exe %s)", pf.bin, self)
	}
	// Same PID, other program: a reused PID must not be trusted.
	other := pidFile{path: pf.path, bin: "/usr/bin/not-this"}
	if _, ok, stale := other.running(); ok || !stale {
		t.Errorf("PID of another program: ok=%v stale=%v, want stale", ok, stale)
	}
	os.WriteFile(pf.path, []byte(strconv.Itoa(1<<22+12345)), 0o644)
	if _, ok, stale := pf.running(); ok || !stale {
		t.Errorf("dead PID: ok=%v stale=%v, want stale", ok, stale)
	}
}

func TestHexIPv4(t *testing.T) {
	if got := hexIPv4("127.0.0.1"); got != "0100007F" {
		t.Errorf("hexIPv4(127.0.0.1) = %s, want 0100007F as in /proc/net/tcp", got)
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/a\040b`); got != "/a b" {
		t.Errorf("unescapeMount = %q", got)
	}
}
