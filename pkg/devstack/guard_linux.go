//go:build linux

package devstack

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// guardChain rejects traffic to a Service IP that kube-proxy has not (yet)
// translated. Without it, the first connection to a brand-new Service,
// opened before kube-proxy synced, follows the default route off the
// machine, where anything may answer it (here, a 404 from the network
// outside); kept alive, it never reaches the Service. Pod traffic passes
// the CNI firewall plugin's CNI-ADMIN chain before its per-pod accepts;
// the host's own traffic passes OUTPUT. Down removes the chain with the
// other KUBE-* chains.
const guardChain = "KUBE-TESTSHIP-GUARD"

func guardRules() [][]string {
	return [][]string{
		{guardChain, "-d", serviceCIDR, "-m", "comment", "--comment", "testship: Service IP not translated by kube-proxy", "-j", "REJECT", "--reject-with", "icmp-port-unreachable"},
		{"CNI-ADMIN", "-j", guardChain},
		{"OUTPUT", "-j", guardChain},
	}
}

func iptables(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w", "5", "-t", "filter"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (s *stack) ensureServiceGuard(ctx context.Context) (StepResult, error) {
	missing := false
	for _, r := range guardRules() {
		if iptables(ctx, append([]string{"-C"}, r...)...) != nil {
			missing = true
		}
	}
	if !missing {
		return StepResult{Action: Kept, Detail: "rejecting untranslated traffic to " + serviceCIDR}, nil
	}
	for _, chain := range []string{guardChain, "CNI-ADMIN"} {
		iptables(ctx, "-N", chain) // exists already is fine
	}
	for _, r := range guardRules() {
		if iptables(ctx, append([]string{"-C"}, r...)...) == nil {
			continue
		}
		if err := iptables(ctx, append([]string{"-A"}, r...)...); err != nil {
			return StepResult{}, err
		}
	}
	return StepResult{Action: Built, Detail: "iptables chain " + guardChain + " rejects untranslated traffic to " + serviceCIDR}, nil
}
