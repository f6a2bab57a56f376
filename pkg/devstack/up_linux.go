//go:build linux

package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// step is one named unit of Up: it checks its component and brings it up
// when needed.
type step struct {
	name string
	run  func(ctx context.Context) (StepResult, error)
}

// Up brings up whatever part of the stack is not healthy, in order, and
// reports what it did. A second Up on a healthy stack starts nothing. On
// error, components already healthy stay up; re-run Up after fixing the
// cause, or Down to stop them.
func Up(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	s, err := newStack(o)
	if err != nil {
		return nil, err
	}
	if err := preflight(); err != nil {
		return nil, err
	}
	// Before anything is written there: only a directory testship made.
	if err := claimDir(s.o.Dir, s.out); err != nil {
		return nil, err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := ensureDir(s.path("run"), s.path("logs")); err != nil {
		return nil, err
	}
	rep := &Report{}
	for _, st := range s.upSteps() {
		t0 := time.Now()
		res, err := st.run(ctx)
		res.Step, res.Took = st.name, time.Since(t0)
		if err != nil {
			rep.Took = time.Since(start)
			return rep, fmt.Errorf("dev:up step %q failed: %w\n(what is already healthy stays up: fix the cause and re-run dev:up, or stop everything with dev:down)", st.name, err)
		}
		rep.Steps = append(rep.Steps, res)
		fmt.Fprintf(s.out, "%-24s %-8s %s (%s)\n", st.name, res.Action, res.Detail, res.Took.Round(10*time.Millisecond))
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// preflight refuses to run where the stack cannot work.
func preflight() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the local stack must run as root (it starts dockerd, containerd and the kubelet, and changes iptables); you are uid %d: run it with sudo or as root", os.Geteuid())
	}
	return nil
}

func (s *stack) upSteps() []step {
	var steps []step
	steps = append(steps, step{"packages", s.ensurePackages})
	byName := map[string]daemon{}
	for _, d := range s.daemons() {
		byName[d.name] = d
	}
	daemonStep := func(name string) step {
		return step{name, func(ctx context.Context) (StepResult, error) { return s.ensure(ctx, byName[name]) }}
	}
	steps = append(steps,
		daemonStep("dockerd"),
		step{"configs", s.ensureConfigs},
		daemonStep("registry"),
		step{"kubernetes binaries", func(ctx context.Context) (StepResult, error) { return s.ensureBinaries(ctx, s.kube) }},
		step{"coredns binary", func(ctx context.Context) (StepResult, error) { return s.ensureBinaries(ctx, s.coredns) }},
		step{"pause image", s.ensurePause},
		step{"pki", s.ensurePKI},
		daemonStep("etcd"),
		daemonStep("kube-apiserver"),
		daemonStep("kube-controller-manager"),
		daemonStep("kube-scheduler"),
		daemonStep("containerd"),
		daemonStep("kubelet"),
		daemonStep("kube-proxy"),
		step{"service guard", s.ensureServiceGuard},
		daemonStep("coredns"),
		step{"cluster ready", s.waitReady},
	)
	return steps
}

// packages maps a required command to the Debian package providing it.
var packages = []struct{ cmd, pkg string }{
	{"docker-registry", "docker-registry"},
	{"etcd", "etcd-server"},
	{"containerd", "containerd"},
	{"containerd-shim-runc-v2", "containerd"},
	{"runc", "runc"},
	{"/usr/lib/cni/bridge", "containernetworking-plugins"},
	{"iptables", "iptables"},
	{"ip", "iproute2"},
	{"mount", "mount"},
}

// ensurePackages installs the Debian packages of missing commands with
// apt-get, or says which to install when apt-get is not available.
func (s *stack) ensurePackages(ctx context.Context) (StepResult, error) {
	var missing []string
	seen := map[string]bool{}
	need := func(pkg string) {
		if !seen[pkg] {
			seen[pkg] = true
			missing = append(missing, pkg)
		}
	}
	for _, p := range packages {
		if strings.HasPrefix(p.cmd, "/") {
			if _, err := os.Stat(p.cmd); err != nil {
				need(p.pkg)
			}
		} else if _, err := exec.LookPath(p.cmd); err != nil {
			need(p.pkg)
		}
	}
	if _, err := exec.LookPath("dockerd"); err != nil && dockerHealthy(ctx) != nil {
		need("docker.io")
	}
	if _, err := goTool(); err != nil {
		return StepResult{}, err
	}
	if len(missing) == 0 {
		return StepResult{Action: Kept, Detail: "all present"}, nil
	}
	apt, err := exec.LookPath("apt-get")
	if err != nil {
		return StepResult{}, fmt.Errorf("missing Debian packages %s and apt-get is not available: install them by hand (or their equivalents on this distribution)", strings.Join(missing, " "))
	}
	fmt.Fprintf(s.out, "  installing %s with apt-get\n", strings.Join(missing, " "))
	// Keep apt from starting the packages' own services (a registry with
	// auth on :5000, etcd on :2379): the stack runs its own instances.
	// policy-rc.d answering 101 is Debian's way to say "do not start".
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); os.IsNotExist(err) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\n# written by testship dev:up while installing packages\nexit 101\n"), 0o755); err == nil {
			defer os.Remove(policy)
		}
	}
	install := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, apt, append([]string{"install", "-y", "--no-install-recommends"}, missing...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := install(); err != nil {
		upd := exec.CommandContext(ctx, apt, "update")
		upd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		upd.Run()
		if out, err := install(); err != nil {
			return StepResult{}, fmt.Errorf("apt-get install %s failed: %v\n%s", strings.Join(missing, " "), err, lastLines(string(out), 15))
		}
	}
	return StepResult{Action: Built, Detail: "installed " + strings.Join(missing, " ")}, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (s *stack) ensureConfigs(context.Context) (StepResult, error) {
	written, err := s.writeConfigs()
	if err != nil {
		return StepResult{}, err
	}
	if len(written) == 0 {
		return StepResult{Action: Kept, Detail: "unchanged"}, nil
	}
	return StepResult{Action: Built, Detail: "wrote " + strings.Join(written, ", ")}, nil
}

func (s *stack) ensureBinaries(ctx context.Context, b binSet) (StepResult, error) {
	if b.ready() {
		return StepResult{Action: Kept, Detail: "cached in " + b.dir}, nil
	}
	repo, err := findRepo(s.o.RepoDir)
	if err != nil {
		return StepResult{}, err
	}
	if err := b.build(ctx, repo, s.out); err != nil {
		return StepResult{}, err
	}
	for _, bin := range b.bins {
		s.restart[bin] = "binary rebuilt"
	}
	return StepResult{Action: Built, Detail: "into " + b.dir}, nil
}

func (s *stack) ensurePause(ctx context.Context) (StepResult, error) {
	if err := pauseImagePresent(ctx); err == nil {
		return StepResult{Action: Kept, Detail: pauseImage}, nil
	}
	if err := pushPauseImage(ctx); err != nil {
		return StepResult{}, err
	}
	return StepResult{Action: Built, Detail: "pushed " + pauseImage}, nil
}

// certUsers maps what the PKI step may regenerate to the daemons that
// must restart to use it ("ca": all of them).
var certUsers = map[string][]string{
	"ca":                       {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "coredns"},
	"sa":                       {"kube-apiserver", "kube-controller-manager"},
	"etcd-server":              {"etcd"},
	"apiserver":                {"kube-apiserver"},
	"apiserver-kubelet-client": {"kube-apiserver"},
	"apiserver-etcd-client":    {"kube-apiserver"},
	"admin":                    {"coredns"}, // reads the admin kubeconfig
	"controller-manager":       {"kube-controller-manager"},
	"scheduler":                {"kube-scheduler"},
	"kube-proxy":               {"kube-proxy"},
	"kubelet-client":           {"kubelet"},
	"kubelet":                  {"kubelet"},
}

// ensurePKI generates the certificates that are missing or outdated (e.g.
// the node IP changed, or a newer testship added etcd's), keeping the
// others, writes the kubeconfigs that are missing or whose certificate
// changed, and marks the daemons using a new certificate for restart.
func (s *stack) ensurePKI(context.Context) (StepResult, error) {
	why := s.pki.upToDate()
	kcs := map[string]string{ // kubeconfig path -> client cert
		Kubeconfig(s.o.Dir):                "admin",
		s.kubeconfig("controller-manager"): "controller-manager",
		s.kubeconfig("scheduler"):          "scheduler",
		s.kubeconfig("kubelet"):            "kubelet-client",
		s.kubeconfig("kube-proxy"):         "kube-proxy",
	}
	var wrote []string
	if why != "" {
		var err error
		if wrote, err = s.pki.generate(); err != nil {
			return StepResult{}, fmt.Errorf("generate PKI in %s: %w", s.pki.dir, err)
		}
	}
	var kcWritten []string
	server := fmt.Sprintf("https://127.0.0.1:%d", APIServerPort)
	for path, cert := range kcs {
		if _, err := os.Stat(path); err == nil && !slices.Contains(wrote, cert) && !slices.Contains(wrote, "ca") {
			continue
		}
		if err := s.pki.writeKubeconfig(path, cert, server); err != nil {
			return StepResult{}, err
		}
		kcWritten = append(kcWritten, filepath.Base(path))
	}
	if len(wrote) == 0 && len(kcWritten) == 0 {
		return StepResult{Action: Kept, Detail: "certificates and kubeconfigs present"}, nil
	}
	for _, name := range wrote {
		for _, d := range certUsers[name] {
			if s.restart[d] == "" {
				s.restart[d] = "certificates regenerated"
			}
		}
	}
	var parts []string
	if len(wrote) > 0 {
		parts = append(parts, fmt.Sprintf("generated %s (%s)", strings.Join(wrote, ", "), why))
	}
	if len(kcWritten) > 0 {
		sort.Strings(kcWritten)
		parts = append(parts, "wrote kubeconfigs "+strings.Join(kcWritten, ", "))
	}
	return StepResult{Action: Built, Detail: strings.Join(parts, "; ")}, nil
}

// clientset returns a client for the admin kubeconfig.
func (s *stack) clientset() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", Kubeconfig(s.o.Dir))
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 5 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// clusterReady checks that the node is Ready, pods can be created (the
// default ServiceAccount exists) and cluster DNS answers.
func (s *stack) clusterReady(ctx context.Context, cs kubernetes.Interface) error {
	node, err := cs.CoreV1().Nodes().Get(ctx, s.nodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("node %s: %w", s.nodeName, err)
	}
	ready := false
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status != corev1.ConditionTrue {
				return fmt.Errorf("node %s is not Ready: %s", s.nodeName, c.Message)
			}
			// After a restart the stored condition is the old kubelet's:
			// only a heartbeat from the new one counts.
			if t, ok := s.startedAt["kubelet"]; ok && c.LastHeartbeatTime.Time.Before(t.Truncate(time.Second)) {
				return fmt.Errorf("node %s: no heartbeat from the kubelet started at %s yet", s.nodeName, t.Format(time.TimeOnly))
			}
			ready = true
		}
	}
	if !ready {
		return fmt.Errorf("node %s has no Ready condition yet", s.nodeName)
	}
	if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
		return fmt.Errorf("default ServiceAccount: %w", err)
	}
	if err := s.dnsHealthy(ctx); err != nil {
		return fmt.Errorf("cluster DNS on %s:53: %w", s.nodeIP, err)
	}
	return nil
}

func (s *stack) waitReady(ctx context.Context) (StepResult, error) {
	cs, err := s.clientset()
	if err != nil {
		return StepResult{}, err
	}
	if s.clusterReady(ctx, cs) == nil {
		return StepResult{Action: Kept, Detail: fmt.Sprintf("node %s Ready, DNS answering", s.nodeName)}, nil
	}
	err = waitHealthy(ctx, func(ctx context.Context) error { return s.clusterReady(ctx, cs) }, 120*time.Second, 0)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return StepResult{}, err
		}
		return StepResult{}, fmt.Errorf("%v\nlast lines of %s:\n%s", err, s.logPath("kubelet"), tailFile(s.logPath("kubelet"), 15))
	}
	return StepResult{Action: Waited, Detail: fmt.Sprintf("node %s Ready, default ServiceAccount present, DNS answering", s.nodeName)}, nil
}
