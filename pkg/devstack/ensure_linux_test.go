//go:build linux

package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func testStack(t *testing.T) *stack {
	t.Helper()
	s, err := newStack(Options{Dir: t.TempDir(), CacheDir: t.TempDir(), NodeIP: "192.0.2.10"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// alive is a health check passing while the daemon's PID file names a
// live process of ours.
func alive(s *stack, d *daemon) func(context.Context) error {
	return func(context.Context) error {
		if _, ok, _ := s.pidFile(*d).running(); ok {
			return nil
		}
		return errors.New("not running")
	}
}

func TestEnsureStartsKeepsAndStops(t *testing.T) {
	s := testStack(t)
	d := &daemon{name: "sleeper", bin: "/bin/sleep", args: []string{"60"}, timeout: 5 * time.Second, grace: time.Second}
	d.health = alive(s, d)
	ctx := context.Background()

	res, err := s.ensure(ctx, *d)
	if err != nil || res.Action != Started {
		t.Fatalf("first ensure: %+v, %v; want started", res, err)
	}
	p, ok, _ := s.pidFile(*d).running()
	if !ok {
		t.Fatal("no PID file after start")
	}
	// It runs in its own session, so it survives its starter.
	if sid, _ := getsid(p.PID); sid != p.PID {
		t.Errorf("daemon session %d, want its own (%d)", sid, p.PID)
	}
	res, err = s.ensure(ctx, *d)
	if err != nil || res.Action != Kept || !strings.Contains(res.Detail, fmt.Sprint(p.PID)) {
		t.Fatalf("second ensure: %+v, %v; want ok naming PID %d", res, err, p.PID)
	}
	res = s.stop(*d)
	if res.Action != Stopped {
		t.Fatalf("stop: %+v", res)
	}
	if _, alive := readProc(p.PID); alive {
		t.Errorf("PID %d still alive after stop", p.PID)
	}
	if res := s.stop(*d); res.Action != Kept {
		t.Errorf("second stop: %+v, want nothing to do", res)
	}
}

func TestEnsureReplacesStalePIDFile(t *testing.T) {
	s := testStack(t)
	d := &daemon{name: "sleeper", bin: "/bin/sleep", args: []string{"60"}, timeout: 5 * time.Second, grace: time.Second}
	d.health = alive(s, d)
	os.MkdirAll(s.path("run"), 0o755)
	// PID 1 is alive but is not our program: the file is stale.
	os.WriteFile(s.pidFile(*d).path, []byte("1\n"), 0o644)
	res, err := s.ensure(context.Background(), *d)
	if err != nil || res.Action != Started || !strings.Contains(res.Detail, "stale PID file") {
		t.Fatalf("ensure with stale PID file: %+v, %v", res, err)
	}
	s.stop(*d)
}

func TestEnsureReportsFailedStartWithLog(t *testing.T) {
	s := testStack(t)
	d := daemon{name: "broken", bin: "/bin/sh", args: []string{"-c", "echo config is broken >&2; exit 1"},
		timeout: 5 * time.Second, grace: time.Second,
		health: func(context.Context) error { return errors.New("no answer") }}
	_, err := s.ensure(context.Background(), d)
	if err == nil {
		t.Fatal("ensure of a daemon that exits: no error")
	}
	for _, want := range []string{"config is broken", s.logPath("broken"), "exited"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestEnsureRefusesForeignPortHolder(t *testing.T) {
	s := testStack(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pn := ln.Addr().(*net.TCPAddr).Port
	d := daemon{name: "wantsport", bin: "/bin/sleep", args: []string{"60"}, ports: []port{{n: pn}},
		timeout: time.Second, grace: time.Second,
		health: func(context.Context) error { return errors.New("no answer") }}
	_, err = s.ensure(context.Background(), d)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("port %d is taken by PID %d", pn, os.Getpid())) {
		t.Fatalf("want an error naming this process as the port's holder, got %v", err)
	}
	if _, ok, _ := s.pidFile(d).running(); ok {
		t.Error("started although the port was taken")
	}
}

func getsid(pid int) (int, error) {
	sid, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(pid), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(sid), nil
}

func TestPackagesWithoutAptSaysWhatToInstall(t *testing.T) {
	s := testStack(t)
	t.Setenv("PATH", t.TempDir()) // no etcd, containerd, apt-get ...
	_, err := s.ensurePackages(context.Background())
	if err == nil {
		t.Fatal("no error with every command missing")
	}
	for _, want := range []string{"apt-get is not available", "etcd-server", "containerd", "docker-registry"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
