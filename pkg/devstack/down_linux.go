//go:build linux

package devstack

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Down stops every process Up started (by the PIDs in its PID files, never
// by name), the pods' containers, removes the network state the cluster
// added (cni0, the CNI-* and KUBE-* iptables chains, pod network
// namespaces) and unmounts what the kubelet and containerd mounted under the
// state dir's known sub-directories. With wipe it also deletes the
// cluster's data (the known sub-paths but the logs: see subPaths), so the
// next Up starts afresh. It refuses a state dir without testship's marker
// before touching anything. A Docker Engine or registry that testship did
// not start is left alone.
func Down(ctx context.Context, o Options, wipe bool) (*Report, error) {
	start := time.Now()
	s, err := newStack(o)
	if err != nil {
		return nil, err
	}
	if err := preflight(); err != nil {
		return nil, err
	}
	// Before anything is stopped, unmounted or deleted: only a directory
	// testship made (its PID files name the processes to stop).
	if proceed, err := downAllowed(s.o.Dir); err != nil {
		return nil, err
	} else if !proceed {
		return &Report{Took: time.Since(start)}, nil
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep := &Report{}
	add := func(r StepResult, t0 time.Time) {
		r.Took = time.Since(t0)
		rep.Steps = append(rep.Steps, r)
		fmt.Fprintf(s.out, "%-24s %-8s %s (%s)\n", r.Step, r.Action, r.Detail, r.Took.Round(10*time.Millisecond))
	}
	ds := s.daemons()
	slices.Reverse(ds)
	for _, d := range ds {
		t0 := time.Now()
		add(s.stop(d), t0)
		if d.name == "kubelet" {
			// With the kubelet gone nothing restarts them: kill the
			// pods' processes, then containerd's shims.
			t0 := time.Now()
			add(s.killPods(), t0)
		}
	}
	t0 := time.Now()
	add(s.cleanNetwork(ctx), t0)
	t0 = time.Now()
	add(s.unmountAll(), t0)
	if wipe {
		t0 = time.Now()
		add(s.wipe(), t0)
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// stop stops d if a process of ours runs it: the one in its PID file, or
// our binary left holding its port by a killed run.
func (s *stack) stop(d daemon) StepResult {
	res := StepResult{Step: d.name, Action: Kept, Detail: "not running"}
	pf := s.pidFile(d)
	p, ours, stale := pf.running()
	var stopped []string
	if ours {
		how := "stopped"
		if stopPID(p.PID, d.grace) {
			how = "killed (did not stop on SIGTERM)"
		}
		stopped = append(stopped, fmt.Sprintf("%s PID %d", how, p.PID))
	}
	if stale {
		res.Detail = "not running; removed stale PID file"
	}
	pf.remove()
	if own, found := findOwn(d); found && !d.neverAdopt {
		stopPID(own.PID, d.grace)
		stopped = append(stopped, fmt.Sprintf("stopped leftover PID %d (no PID file)", own.PID))
	}
	if len(stopped) > 0 {
		res.Action, res.Detail = Stopped, strings.Join(stopped, "; ")
	} else if d.external && d.health(context.Background()) == nil {
		res.Detail = "left running: not started by testship"
	}
	return res
}

// killPods kills every process in the kubelet's pod cgroups (the
// containers and their pause processes) and the containerd shims serving
// the stack's containerd, found by its socket in their arguments.
func (s *stack) killPods() StepResult {
	res := StepResult{Step: "pods", Action: Kept, Detail: "none running"}
	n := 0
	// The pod cgroups are only ours when our containerd runs: another
	// Kubernetes on this host would use the same kubepods cgroups.
	cd := s.daemon("containerd")
	_, ours, _ := s.pidFile(cd).running()
	if _, found := findOwn(cd); !ours && !found {
		n = -1
	}
	for round := 0; n >= 0 && round < 20; round++ {
		pids := kubepodsPIDs()
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			if syscall.Kill(pid, syscall.SIGKILL) == nil && round == 0 {
				n++
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	shims := 0
	sock := s.containerdSock()
	procs, _ := os.ReadDir("/proc")
	for _, d := range procs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		p, ok := readProc(pid)
		if !ok || !strings.HasPrefix(filepath.Base(p.Argv[0]), "containerd-shim") {
			continue
		}
		for i, a := range p.Argv {
			if a == "-address" && i+1 < len(p.Argv) && p.Argv[i+1] == sock {
				stopPID(pid, 2*time.Second)
				shims++
			}
		}
	}
	if n < 0 {
		n = 0
	} else {
		removeKubepodsCgroups()
	}
	if n+shims > 0 {
		res.Action, res.Detail = Stopped, fmt.Sprintf("killed %d container processes and %d containerd shims", n, shims)
	}
	return res
}

// kubepodsRoots are the kubelet's pod cgroups (cgroupfs driver) in each
// cgroup v1 hierarchy, or the unified one.
func kubepodsRoots() []string {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	if fi, err := os.Stat("/sys/fs/cgroup/kubepods"); err == nil && fi.IsDir() {
		roots = append(roots, "/sys/fs/cgroup/kubepods")
	}
	return roots
}

func kubepodsPIDs() []int {
	seen := map[int]bool{}
	var out []int
	for _, root := range kubepodsRoots() {
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			raw, _ := os.ReadFile(path)
			for _, f := range strings.Fields(string(raw)) {
				if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
					seen[pid] = true
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	return out
}

// removeKubepodsCgroups removes the empty pod cgroups, deepest first.
func removeKubepodsCgroups() {
	for _, root := range kubepodsRoots() {
		var dirs []string
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			syscall.Rmdir(d)
		}
	}
}

// cleanNetwork removes what the cluster added to the host's network: the
// KUBE-* (kube-proxy, kubelet) and CNI-* (bridge, portmap, firewall
// plugins) iptables chains and the rules jumping to them, the pods'
// network namespaces, the cni0 bridge (after flushing its neighbours, whose
// stale entries delay traffic after a restart) and the IP allocations.
func (s *stack) cleanNetwork(ctx context.Context) StepResult {
	var did []string
	if bin := s.kube.path("kube-proxy"); fileExists(bin) {
		cmd := exec.CommandContext(ctx, bin, "--cleanup")
		cmd.Env = daemonEnv
		cmd.Run() // best effort; the generic pass below catches the rest
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		if n := removeChains(ctx, tool, []string{"KUBE-", "CNI-"}); n > 0 {
			did = append(did, fmt.Sprintf("%d %s chains", n, tool))
		}
	}
	if ns, _ := filepath.Glob("/run/netns/cni-*"); len(ns) > 0 {
		for _, p := range ns {
			syscall.Unmount(p, syscall.MNT_DETACH)
			os.Remove(p)
		}
		did = append(did, fmt.Sprintf("%d pod network namespaces", len(ns)))
	}
	if _, err := os.Stat("/sys/class/net/cni0"); err == nil {
		exec.CommandContext(ctx, "ip", "neigh", "flush", "dev", "cni0").Run()
		if out, err := exec.CommandContext(ctx, "ip", "link", "delete", "cni0").CombinedOutput(); err != nil {
			did = append(did, fmt.Sprintf("cni0 NOT removed: %v %s", err, strings.TrimSpace(string(out))))
		} else {
			did = append(did, "cni0 bridge")
		}
	}
	if fileExists(s.path("cni", "ipam")) {
		os.RemoveAll(s.path("cni", "ipam"))
	}
	if len(did) == 0 {
		return StepResult{Step: "network", Action: Kept, Detail: "nothing to remove"}
	}
	return StepResult{Step: "network", Action: Removed, Detail: strings.Join(did, ", ")}
}

// removeChains deletes, in every table, the chains whose names start with
// one of prefixes, and the rules of other chains that jump to them, in one
// iptables-restore --noflush transaction per table.
func removeChains(ctx context.Context, tool string, prefixes []string) int {
	if _, err := exec.LookPath(tool + "-save"); err != nil {
		return 0
	}
	isOurs := func(chain string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(chain, p) {
				return true
			}
		}
		return false
	}
	total := 0
	for _, table := range []string{"filter", "nat", "mangle", "raw"} {
		out, err := exec.CommandContext(ctx, tool+"-save", "-t", table).Output()
		if err != nil {
			continue
		}
		var chains, deletes []string
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, ":") {
				name := strings.Fields(line[1:])[0]
				if isOurs(name) {
					chains = append(chains, name)
				}
				continue
			}
			if !strings.HasPrefix(line, "-A ") {
				continue
			}
			f := strings.Fields(line)
			if len(f) < 2 || isOurs(f[1]) {
				continue // rules inside our chains go with the flush
			}
			for i := 0; i+1 < len(f); i++ {
				if (f[i] == "-j" || f[i] == "-g") && isOurs(f[i+1]) {
					deletes = append(deletes, "-D"+line[2:])
					break
				}
			}
		}
		if len(chains) == 0 && len(deletes) == 0 {
			continue
		}
		var script strings.Builder
		fmt.Fprintf(&script, "*%s\n", table)
		for _, d := range deletes {
			script.WriteString(d + "\n")
		}
		for _, c := range chains {
			fmt.Fprintf(&script, "-F %s\n", c)
		}
		for _, c := range chains {
			fmt.Fprintf(&script, "-X %s\n", c)
		}
		script.WriteString("COMMIT\n")
		cmd := exec.CommandContext(ctx, tool+"-restore", "--noflush")
		cmd.Stdin = strings.NewReader(script.String())
		if err := cmd.Run(); err == nil {
			total += len(chains)
		}
	}
	return total
}

// unmountAll detaches every mount under the state dir's known
// sub-directories (kubelet volumes, containerd rootfs and shm mounts),
// deepest first; nothing else in or outside the state dir.
func (s *stack) unmountAll() StepResult {
	mounts := mountsUnderAny(mountRoots(s.o.Dir))
	for _, m := range mounts {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
	if len(mounts) == 0 {
		return StepResult{Step: "mounts", Action: Kept, Detail: "none under " + s.o.Dir}
	}
	left := mountsUnderAny(mountRoots(s.o.Dir))
	detail := fmt.Sprintf("unmounted %d under %s", len(mounts)-len(left), s.o.Dir)
	if len(left) > 0 {
		detail += fmt.Sprintf("; %d could not be unmounted, e.g. %s", len(left), left[0])
	}
	return StepResult{Step: "mounts", Action: Removed, Detail: detail}
}

// mountsUnderAny lists the mount points under any of dirs, deepest first.
func mountsUnderAny(dirs []string) []string {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	return mountPointsUnder(string(raw), dirs)
}

// mountPointsUnder returns the mount points of a mountinfo text strictly
// below one of dirs, deepest first.
func mountPointsUnder(mountinfo string, dirs []string) []string {
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		for _, d := range dirs {
			if strings.HasPrefix(mp, strings.TrimSuffix(d, "/")+"/") {
				out = append(out, mp)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i]) != len(out[j]) {
			return len(out[i]) > len(out[j])
		}
		return out[i] < out[j] // equal ones side by side for Compact
	})
	return slices.Compact(out)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// wipe deletes the cluster's data: the state dir's known sub-paths but
// the logs, the lock and the marker (wipePaths). Nothing else in the
// directory, and never the directory itself.
func (s *stack) wipe() StepResult {
	removed, failed := removeKnown(s.o.Dir)
	detail := fmt.Sprintf("deleted %s from %s (logs kept)", strings.Join(removed, ", "), s.o.Dir)
	if len(removed) == 0 {
		detail = "no cluster data in " + s.o.Dir
	}
	if len(failed) > 0 {
		detail += "; FAILED: " + strings.Join(failed, "; ")
	}
	return StepResult{Step: "wipe", Action: Removed, Detail: detail}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
