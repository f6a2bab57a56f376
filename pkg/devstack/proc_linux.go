//go:build linux

package devstack

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procInfo describes a running process as seen in /proc.
type procInfo struct {
	PID  int
	Argv []string
}

func (p procInfo) String() string {
	cmd := strings.Join(p.Argv, " ")
	if len(cmd) > 120 {
		cmd = cmd[:117] + "..."
	}
	return fmt.Sprintf("PID %d (%s)", p.PID, cmd)
}

// readProc returns the process with the given PID, or ok=false when it does
// not exist or is a zombie (exited, waiting to be reaped).
func readProc(pid int) (procInfo, bool) {
	if pid <= 0 {
		return procInfo{}, false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procInfo{}, false
	}
	// The state follows the parenthesised command name, which may itself
	// contain spaces or parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return procInfo{}, false
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return procInfo{}, false
	}
	argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	return procInfo{PID: pid, Argv: argv}, true
}

// pidFile is a daemon's PID file: the PID the stack started, checked
// against the process's argv[0] before it is trusted, so a stale file whose
// PID was reused by another program is never acted upon.
type pidFile struct {
	path string
	bin  string // expected argv[0]
}

// running returns the recorded process when it is alive and is still the
// program the stack started. stale reports a PID file that exists but does
// not match a live process of ours.
func (f pidFile) running() (p procInfo, ok, stale bool) {
	raw, err := os.ReadFile(f.path)
	if err != nil {
		return procInfo{}, false, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return procInfo{}, false, true
	}
	p, alive := readProc(pid)
	if !alive || len(p.Argv) == 0 || p.Argv[0] != f.bin {
		return procInfo{}, false, true
	}
	return p, true, false
}

func (f pidFile) write(pid int) error {
	if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(f.path, []byte(strconv.Itoa(pid)+"\n"), 0o644)
}

func (f pidFile) remove() { os.Remove(f.path) }

// startDetached starts argv in its own session with output appended to
// logPath, so it outlives the calling process (and Mage) and is not hit by
// signals sent to the caller's process group. It returns the PID.
func startDetached(argv []string, env []string, dir, logPath string) (int, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n===== %s testship started: %s\n", time.Now().UTC().Format(time.RFC3339), strings.Join(argv, " "))
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdin = devnull
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	// Reap the child if it exits while this process still lives, so that a
	// crashed daemon shows up as gone rather than as a zombie.
	go cmd.Wait()
	return pid, nil
}

// stopPID sends SIGTERM, waits up to grace for the process to exit, then
// sends SIGKILL. It reports whether it had to kill.
func stopPID(pid int, grace time.Duration) (killed bool) {
	if _, ok := readProc(pid); !ok {
		return false
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if _, ok := readProc(pid); !ok {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 50; i++ {
		if _, ok := readProc(pid); !ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// portHolder finds the process listening on the given local port (TCP, or
// UDP when udp is set), if any; with ip set, only sockets bound to that
// address or to the wildcard address count. It reads /proc/net and each
// process's file descriptors, so it sees every process when run as root.
func portHolder(port int, udp bool, ip string) (procInfo, bool) {
	files := []string{"/proc/net/tcp", "/proc/net/tcp6"}
	if udp {
		files = []string{"/proc/net/udp", "/proc/net/udp6"}
	}
	inodes := map[string]bool{}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 {
				continue
			}
			addrHex, portHex, _ := strings.Cut(fields[1], ":")
			p, err := strconv.ParseUint(portHex, 16, 16)
			if err != nil || int(p) != port {
				continue
			}
			if ip != "" && strings.Trim(addrHex, "0") != "" && addrHex != hexIPv4(ip) {
				continue
			}
			// TCP must be LISTEN (0A); UDP sockets bound to the port are
			// state 07 (unconnected).
			if (!udp && fields[3] != "0A") || (udp && fields[3] != "07") {
				continue
			}
			inodes[fields[9]] = true
		}
		f.Close()
	}
	if len(inodes) == 0 {
		return procInfo{}, false
	}
	procs, _ := os.ReadDir("/proc")
	for _, d := range procs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				if p, ok := readProc(pid); ok {
					return p, true
				}
			}
		}
	}
	// Listening, but the owner is not visible (another PID namespace).
	return procInfo{PID: 0, Argv: []string{"unknown process"}}, true
}

// hexIPv4 renders an IPv4 address the way /proc/net/{tcp,udp} do (the
// 32-bit value in host byte order, little-endian here).
func hexIPv4(ip string) string {
	v4 := net.ParseIP(ip).To4()
	if v4 == nil {
		return ""
	}
	return fmt.Sprintf("%02X%02X%02X%02X", v4[3], v4[2], v4[1], v4[0])
}
