//go:build linux

package devstack

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"k8s.io/apimachinery/pkg/util/wait"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stack holds the resolved settings and paths of one local stack.
type stack struct {
	o        Options
	nodeName string
	nodeIP   string
	kube     binSet
	coredns  binSet
	pki      pki
	// restart names daemons whose configuration or certificates changed in
	// this run, so a running instance is restarted to pick them up.
	restart map[string]string
	// startedAt records when this run started each daemon.
	startedAt map[string]time.Time
	out       io.Writer
}

func newStack(o Options) (*stack, error) {
	o = o.withDefaults()
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("hostname: %w", err)
	}
	s := &stack{
		o:         o,
		nodeName:  strings.ToLower(host),
		kube:      kubeBinSet(o.CacheDir),
		coredns:   corednsBinSet(o.CacheDir),
		restart:   map[string]string{},
		startedAt: map[string]time.Time{},
		out:       o.Out,
	}
	s.nodeIP = o.NodeIP
	if s.nodeIP == "" {
		if s.nodeIP, err = detectNodeIP(); err != nil {
			return nil, err
		}
	}
	s.pki = pki{dir: s.path("pki"), nodeName: s.nodeName, nodeIP: net.ParseIP(s.nodeIP)}
	return s, nil
}

func (s *stack) path(elem ...string) string {
	return filepath.Join(append([]string{s.o.Dir}, elem...)...)
}
func (s *stack) logPath(name string) string { return s.path("logs", name+".log") }
func (s *stack) kubeconfig(name string) string {
	return s.path("kubeconfigs", name+".conf")
}
func (s *stack) containerdSock() string { return s.path("run", "containerd.sock") }

// detectNodeIP picks the address of the interface holding the default
// route: it exists before any pod, unlike cni0, and pods reach it.
func detectNodeIP() (string, error) {
	c, err := net.Dial("udp4", "192.0.2.254:9") // no packet is sent
	if err == nil {
		ip := c.LocalAddr().(*net.UDPAddr).IP
		c.Close()
		if !ip.IsLoopback() && !ip.IsUnspecified() {
			return ip.String(), nil
		}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !strings.HasPrefix(n.IP.String(), "10.244.") {
			return n.IP.String(), nil
		}
	}
	return "", errors.New("cannot find this machine's IPv4 address (no default route): set TESTSHIP_DEV_NODE_IP")
}

// lock serialises concurrent dev:up/dev:down runs on one machine.
func (s *stack) lock(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(s.o.Dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.path(".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintf(s.out, "waiting for another dev:up/dev:down on %s to finish (lock %s)\n", s.o.Dir, f.Name())
		done := make(chan error, 1)
		go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
		select {
		case err := <-done:
			if err != nil {
				f.Close()
				return nil, err
			}
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		}
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// ----- health checks -------------------------------------------------------

var insecureHTTP = &http.Client{
	Timeout:   3 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
}

// httpOK GETs url and wants a 200.
func httpOK(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func unixHTTPClient(sock string) *http.Client {
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
}

// dockerSocket is the Docker Engine's socket: $DOCKER_HOST when it is a
// unix socket, else the default.
func dockerSocket() string {
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		return strings.TrimPrefix(h, "unix://")
	}
	return "/var/run/docker.sock"
}

func dockerHealthy(ctx context.Context) error {
	return httpOK(ctx, unixHTTPClient(dockerSocket()), "http://docker/_ping")
}

func registryHealthy(ctx context.Context) error {
	return httpOK(ctx, insecureHTTP, "http://"+RegistryAddr+"/v2/")
}

func (s *stack) apiserverClient() (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(s.pki.path("admin.crt"), s.pki.path("admin.key"))
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // local health probe; the CA is ours
		Certificates:       []tls.Certificate{cert},
	}}}, nil
}

func (s *stack) apiserverHealthy(ctx context.Context) error {
	c, err := s.apiserverClient()
	if err != nil {
		return err
	}
	return httpOK(ctx, c, fmt.Sprintf("https://127.0.0.1:%d/readyz", APIServerPort))
}

func socketAnswers(sock string) error {
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// dnsHealthy asks the cluster DNS for the kubernetes Service.
func (s *stack) dnsHealthy(ctx context.Context) error {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(s.nodeIP, "53"))
	}}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	name := "kubernetes.default.svc." + clusterDomain
	addrs, err := r.LookupHost(ctx, name)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if a == serviceIP {
			return nil
		}
	}
	return fmt.Errorf("%s resolved to %v, want %s", name, addrs, serviceIP)
}

// ----- daemons -------------------------------------------------------------

type port struct {
	n   int
	udp bool
	ip  string // only sockets on this address (or the wildcard) conflict
}

// daemon is a long-running process of the stack.
type daemon struct {
	name    string
	bin     string
	args    []string
	ports   []port
	health  func(context.Context) error
	timeout time.Duration // for becoming healthy after start
	grace   time.Duration // between SIGTERM and SIGKILL on stop
	// external: a healthy instance not started by testship is used as is
	// (Docker Engine, registry) instead of being an error.
	external bool
	// neverAdopt: a process with our command line but no PID file is not
	// taken for ours (a hand-started `dockerd` looks just like ours).
	neverAdopt bool
}

func (s *stack) pidFile(d daemon) pidFile {
	return pidFile{path: s.path("run", d.name+".pid"), bin: d.bin}
}

var daemonEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"LANG=C.UTF-8",
}

// ensure makes d healthy: keeps a healthy instance, removes a stale PID
// file, replaces an unhealthy or outdated instance of its own, refuses to
// start when a foreign process holds its port, then starts it and waits.
func (s *stack) ensure(ctx context.Context, d daemon) (StepResult, error) {
	res := StepResult{Step: d.name}
	pf := s.pidFile(d)
	var notes []string
	p, ours, stale := pf.running()
	if ours {
		why, restart := s.restart[d.name]
		if !restart && !slices.Equal(p.Argv, append([]string{d.bin}, d.args...)) {
			// Started by an older testship with other flags (e.g. etcd
			// before TLS): it must run with the current ones.
			why, restart = "command line changed", true
		}
		if restart {
			notes = append(notes, fmt.Sprintf("restarted PID %d: %s", p.PID, why))
			stopPID(p.PID, d.grace)
			pf.remove()
		} else if waitHealthy(ctx, d.health, min(d.timeout, 10*time.Second), p.PID) == nil {
			res.Action, res.Detail = Kept, fmt.Sprintf("running, PID %d", p.PID)
			return res, nil
		} else {
			notes = append(notes, fmt.Sprintf("PID %d was unhealthy: restarted", p.PID))
			stopPID(p.PID, d.grace)
			pf.remove()
		}
	} else if stale {
		notes = append(notes, "removed stale PID file "+pf.path)
		pf.remove()
	}

	// A process with exactly our command line but no PID file: started by
	// a run that was killed before writing it.
	if own, found := findOwn(d); found && !d.neverAdopt {
		if s.restart[d.name] == "" && waitHealthy(ctx, d.health, min(d.timeout, 10*time.Second), own.PID) == nil {
			pf.write(own.PID)
			res.Action = Kept
			res.Detail = strings.Join(append([]string{fmt.Sprintf("running, PID %d (adopted: it had no PID file)", own.PID)}, notes...), "; ")
			return res, nil
		}
		notes = append(notes, fmt.Sprintf("stopped leftover PID %d", own.PID))
		stopPID(own.PID, d.grace)
	}
	if d.external && d.health(ctx) == nil {
		detail := "using the one already running, not started by testship"
		for _, pt := range d.ports {
			if h, held := portHolder(pt.n, pt.udp, pt.ip); held {
				detail = fmt.Sprintf("using the one already running (%s), not started by testship", h)
			}
		}
		res.Action, res.Detail = Kept, detail
		return res, nil
	}
	for _, pt := range d.ports {
		h, held := portHolder(pt.n, pt.udp, pt.ip)
		if held && h.PID == 0 && len(notes) > 0 {
			// We just stopped the previous holder: its listening socket
			// can outlive the process for a moment.
			h, held = portReleased(ctx, pt.n, pt.udp, pt.ip, 5*time.Second)
		}
		if !held {
			continue
		}
		proto := "TCP"
		if pt.udp {
			proto = "UDP"
		}
		return res, fmt.Errorf("%s: %s port %d is taken by %s; stop it (or free the port) so dev:up can start %s there", d.name, proto, pt.n, h, d.name)
	}

	if _, err := os.Stat(d.bin); err != nil {
		return res, fmt.Errorf("%s: binary %s: %w", d.name, d.bin, err)
	}
	argv := append([]string{d.bin}, d.args...)
	s.startedAt[d.name] = time.Now()
	pid, err := startDetached(argv, daemonEnv, s.o.Dir, s.logPath(d.name))
	if err != nil {
		return res, fmt.Errorf("start %s: %w", d.name, err)
	}
	if err := pf.write(pid); err != nil {
		return res, err
	}
	if err := waitHealthy(ctx, d.health, d.timeout, pid); err != nil {
		return res, fmt.Errorf("%s (PID %d) did not become healthy: %v\nlast lines of %s:\n%s",
			d.name, pid, err, s.logPath(d.name), tailFile(s.logPath(d.name), 15))
	}
	delete(s.restart, d.name)
	res.Action = Started
	res.Detail = strings.Join(append([]string{fmt.Sprintf("PID %d, log %s", pid, s.logPath(d.name))}, notes...), "; ")
	return res, nil
}

// findOwn finds a process running exactly d's command line.
func findOwn(d daemon) (procInfo, bool) {
	want := append([]string{d.bin}, d.args...)
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if p, ok := readProc(pid); ok && slices.Equal(p.Argv, want) {
			return p, true
		}
	}
	return procInfo{}, false
}

// waitHealthy polls health until it passes, the timeout passes or the
// process pid exits.
func waitHealthy(ctx context.Context, health func(context.Context) error, timeout time.Duration, pid int) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 150*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if last = health(ctx); last == nil {
			return true, nil
		}
		if pid > 0 {
			if _, alive := readProc(pid); !alive {
				return false, fmt.Errorf("the process exited (last health check: %v)", last)
			}
		}
		return false, nil
	})
	if err != nil && wait.Interrupted(err) && ctx.Err() == nil {
		return fmt.Errorf("still unhealthy after %s: %v", timeout, last)
	}
	return err
}

// daemons lists the stack's processes in start order.
func (s *stack) daemons() []daemon {
	kb := s.kube.path
	dockerd, _ := exec.LookPath("dockerd")
	if dockerd == "" {
		dockerd = "/usr/sbin/dockerd"
	}
	registryBin, _ := exec.LookPath("docker-registry")
	if registryBin == "" {
		registryBin = "/usr/bin/docker-registry"
	}
	etcdBin, _ := exec.LookPath("etcd")
	if etcdBin == "" {
		etcdBin = "/usr/bin/etcd"
	}
	containerdBin, _ := exec.LookPath("containerd")
	if containerdBin == "" {
		containerdBin = "/usr/bin/containerd"
	}
	healthz := func(url string) func(context.Context) error {
		return func(ctx context.Context) error { return httpOK(ctx, insecureHTTP, url) }
	}
	return []daemon{
		{name: "dockerd", bin: dockerd, external: true, neverAdopt: true, timeout: 60 * time.Second, grace: 20 * time.Second,
			health: dockerHealthy},
		{name: "registry", bin: registryBin, args: []string{"serve", s.path("registry", "config.yml")},
			ports: []port{{n: 5000}}, external: true, timeout: 20 * time.Second, grace: 5 * time.Second,
			health: registryHealthy},
		{name: "etcd", bin: etcdBin, args: etcdArgs(s.pki, s.path("etcd"), etcdClientAddr, etcdPeerAddr),
			ports: []port{{n: 2379}, {n: 2380}}, timeout: 30 * time.Second, grace: 10 * time.Second,
			health: func(ctx context.Context) error { return etcdHealthy(ctx, s.pki, etcdClientAddr) }},
		{name: "kube-apiserver", bin: kb("kube-apiserver"), args: append(apiserverEtcdArgs(s.pki, etcdClientAddr), []string{
			fmt.Sprintf("--secure-port=%d", APIServerPort),
			"--advertise-address=" + s.nodeIP,
			"--service-cluster-ip-range=" + serviceCIDR,
			"--service-account-issuer=https://kubernetes.default.svc",
			"--service-account-key-file=" + s.pki.path("sa.pub"),
			"--service-account-signing-key-file=" + s.pki.path("sa.key"),
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--client-ca-file=" + s.pki.path("ca.crt"),
			"--tls-cert-file=" + s.pki.path("apiserver.crt"),
			"--tls-private-key-file=" + s.pki.path("apiserver.key"),
			"--kubelet-client-certificate=" + s.pki.path("apiserver-kubelet-client.crt"),
			"--kubelet-client-key=" + s.pki.path("apiserver-kubelet-client.key"),
			"--allow-privileged=true",
			"--profiling=false",
		}...), ports: []port{{n: APIServerPort}}, timeout: 60 * time.Second, grace: 5 * time.Second,
			health: s.apiserverHealthy},
		{name: "kube-controller-manager", bin: kb("kube-controller-manager"), args: []string{
			"--kubeconfig=" + s.kubeconfig("controller-manager"),
			"--controllers=*",
			"--use-service-account-credentials",
			"--service-account-private-key-file=" + s.pki.path("sa.key"),
			"--root-ca-file=" + s.pki.path("ca.crt"),
			"--cluster-signing-cert-file=" + s.pki.path("ca.crt"),
			"--cluster-signing-key-file=" + s.pki.path("ca.key"),
			"--service-cluster-ip-range=" + serviceCIDR,
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--profiling=false",
		}, ports: []port{{n: 10257}}, timeout: 30 * time.Second, grace: 10 * time.Second,
			health: healthz("https://127.0.0.1:10257/healthz")},
		{name: "kube-scheduler", bin: kb("kube-scheduler"), args: []string{
			"--kubeconfig=" + s.kubeconfig("scheduler"),
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--profiling=false",
		}, ports: []port{{n: 10259}}, timeout: 30 * time.Second, grace: 10 * time.Second,
			health: healthz("https://127.0.0.1:10259/healthz")},
		{name: "containerd", bin: containerdBin, args: []string{"--config", s.path("containerd", "config.toml")},
			timeout: 30 * time.Second, grace: 10 * time.Second,
			health: func(context.Context) error { return socketAnswers(s.containerdSock()) }},
		{name: "kubelet", bin: kb("kubelet"), args: []string{
			"--config=" + s.path("kubelet", "config.yaml"),
			"--kubeconfig=" + s.kubeconfig("kubelet"),
			"--root-dir=" + s.path("kubelet", "root"),
			"--cert-dir=" + s.path("kubelet", "pki"),
			"--node-ip=" + s.nodeIP,
			"--hostname-override=" + s.nodeName,
			"--oom-score-adj=0",
		}, ports: []port{{n: 10250}, {n: 10248}}, timeout: 60 * time.Second, grace: 15 * time.Second,
			health: healthz("http://127.0.0.1:10248/healthz")},
		{name: "kube-proxy", bin: kb("kube-proxy"), args: []string{
			"--config=" + s.path("kube-proxy", "config.yaml"),
		}, ports: []port{{n: 10256}, {n: 10249}}, timeout: 30 * time.Second, grace: 10 * time.Second,
			health: healthz("http://127.0.0.1:10256/livez")},
		{name: "coredns", bin: s.coredns.path("coredns"), args: []string{"-conf", s.path("coredns", "Corefile")},
			ports: []port{{n: 53, udp: true, ip: s.nodeIP}}, timeout: 30 * time.Second, grace: 5 * time.Second,
			health: s.dnsHealthy},
	}
}

func (s *stack) daemon(name string) daemon {
	for _, d := range s.daemons() {
		if d.name == name {
			return d
		}
	}
	panic("devstack: no daemon " + name)
}

// portReleased waits up to limit for a port whose listening socket no
// longer belongs to any process to be released; it returns the holder that
// remains, if any.
func portReleased(ctx context.Context, port int, udp bool, ip string, limit time.Duration) (h procInfo, held bool) {
	_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, limit, true, func(context.Context) (bool, error) {
		h, held = portHolder(port, udp, ip)
		return !held || h.PID != 0, nil
	})
	return h, held
}
