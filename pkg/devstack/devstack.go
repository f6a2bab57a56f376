// Package devstack brings up and tears down the local stack testship's
// end-to-end runs use when no cluster is given: a Docker Engine, an OCI
// registry on 127.0.0.1:5000 and a real single-node Kubernetes whose
// components are built from upstream sources (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, a containerd of its own for the
// kubelet, CNI, kube-proxy and CoreDNS as cluster DNS).
//
// Up runs a list of steps in order, like kind's create actions; each step
// checks whether its component is healthy and starts it only when not, so a
// second Up starts nothing. Daemons run detached (own session, output in
// log files) and are tracked by PID files, so Down stops exactly what Up
// started. The state directory must be one Up created: Up writes a marker
// file (MarkerFile) in it, and Down refuses a directory without one and
// touches only the sub-paths the stack owns. etcd serves its clients TLS
// only, with client certificates from the stack's own CA. Linux and root
// only.
package devstack

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/testship/testship/pkg/config"
)

// Versions of the components built from source.
const (
	KubeVersion    = "v1.34.4"
	CoreDNSVersion = "v1.15.0"
)

// Addresses and ranges of the local cluster.
const (
	RegistryAddr  = "127.0.0.1:5000"
	APIServerPort = 6443
	serviceCIDR   = "10.0.0.0/24"
	serviceIP     = "10.0.0.1" // the kubernetes Service
	podCIDR       = "10.244.0.0/24"
	clusterCIDR   = "10.244.0.0/16"
	clusterDomain = "cluster.local"
	pauseImage    = RegistryAddr + "/testship/pause:3.10-testship"
)

// Options configure the stack. The zero value of each field means its
// default; Out receives progress lines.
type Options struct {
	Dir      string // state dir; default /var/lib/testship/dev
	CacheDir string // binary cache; default /var/cache/testship
	NodeIP   string // default: detected
	// RepoDir is the testship source tree holding tools/kube and
	// tools/coredns; default: found from the working directory upward, else
	// from this package's source location.
	RepoDir string
	Out     io.Writer
}

// OptionsFromConfig turns the validated configuration into Options.
func OptionsFromConfig(c config.Dev, out io.Writer) Options {
	return Options{Dir: c.Dir, CacheDir: c.CacheDir, NodeIP: c.NodeIP, Out: out}
}

// Kubeconfig returns the admin kubeconfig path of a stack using dir.
func Kubeconfig(dir string) string { return filepath.Join(dir, "kubeconfig") }

// Action says what a step did.
type Action string

const (
	Kept    Action = "ok"      // already healthy / up to date: nothing done
	Started Action = "started" // a process was started
	Built   Action = "built"   // a file, binary or image was produced
	Waited  Action = "waited"  // waited for the cluster to become ready
	Stopped Action = "stopped"
	Removed Action = "removed"
)

// StepResult records one step of Up or Down.
type StepResult struct {
	Step   string
	Action Action
	Detail string
	Took   time.Duration
}

// Report is what Up or Down did, step by step.
type Report struct {
	Steps []StepResult
	Took  time.Duration
}

// Changed lists the steps that did something (started, built, stopped,
// removed): empty when the stack was already as asked.
func (r *Report) Changed() []string {
	var out []string
	for _, s := range r.Steps {
		if s.Action != Kept {
			out = append(out, s.Step)
		}
	}
	return out
}

// Summary is a one-line account of the report.
func (r *Report) Summary(verb string) string {
	ch := r.Changed()
	if len(ch) == 0 {
		return fmt.Sprintf("nothing to do: all %d steps already up to date (%s)", len(r.Steps), r.Took.Round(100*time.Millisecond))
	}
	return fmt.Sprintf("%s %d of %d steps in %s: %s", verb, len(ch), len(r.Steps), r.Took.Round(100*time.Millisecond), strings.Join(ch, ", "))
}

// ComponentStatus is one row of Status.
type ComponentStatus struct {
	Name   string
	State  string // running, stopped, unhealthy, ready, missing, external ...
	PID    int    // 0 when none
	Detail string // address, version, log path, reason
}

// Healthy reports whether the component is in a good state.
func (c ComponentStatus) Healthy() bool {
	switch c.State {
	case "running", "ready", "present", "external":
		return true
	}
	return false
}

// PrintStatus writes the status rows as a table.
func PrintStatus(w io.Writer, rows []ComponentStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tSTATE\tPID\tDETAIL")
	for _, r := range rows {
		pid := "-"
		if r.PID > 0 {
			pid = fmt.Sprint(r.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.State, pid, r.Detail)
	}
	tw.Flush()
}

func (o Options) withDefaults() Options {
	if o.Dir == "" {
		o.Dir = config.Get(config.DevDir)
	}
	if o.CacheDir == "" {
		o.CacheDir = config.Get(config.CacheDir)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return o
}

// Usage returns the lines telling a user how to use a running stack.
func Usage(dir string) string {
	kc := Kubeconfig(dir)
	return fmt.Sprintf(`Local stack is up.
  export KUBECONFIG=%s
  kubectl get nodes
  registry: %s (no auth; push with docker push %s/<repo>:<tag>, pods pull the same reference)
  logs:     %s/logs/<component>.log
  stop:     mage dev:down   (DEV_WIPE=true mage dev:down also deletes the cluster's data)
`, kc, RegistryAddr, RegistryAddr, dir)
}

// ensureDir is a small helper shared by the platform code.
func ensureDir(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// tailFile returns the last n lines of a file, for error messages.
func tailFile(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 300 {
			lines[i] = l[:297] + "..."
		}
	}
	return "    " + strings.Join(lines, "\n    ")
}
