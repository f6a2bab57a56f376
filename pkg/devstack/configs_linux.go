//go:build linux

package devstack

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// configFile is a file Up writes; daemons lists who must restart when it
// changes.
type configFile struct {
	path    string
	content string
	daemons []string
}

func (s *stack) configFiles() []configFile {
	p := s.path
	return []configFile{
		{path: p("registry", "config.yml"), daemons: []string{"registry"}, content: fmt.Sprintf(`version: 0.1
log:
  level: warn
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, p("registry", "data"), RegistryAddr)},

		// containerd for the kubelet: its own root, state and socket, apart
		// from the one dockerd runs. restrict_oom_score_adj: the VM lacks
		// CAP_SYS_RESOURCE, so runc cannot set a negative oom_score_adj.
		{path: p("containerd", "config.toml"), daemons: []string{"containerd"}, content: fmt.Sprintf(`version = 2
root = %q
state = %q

[grpc]
  address = %q

[ttrpc]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
`, p("containerd", "root"), p("containerd", "state"), s.containerdSock(), pauseImage,
			p("cni", "net.d"), p("containerd", "certs.d"))},

		{path: p("containerd", "certs.d", RegistryAddr, "hosts.toml"), daemons: []string{"containerd"},
			content: fmt.Sprintf(`server = "http://%s"

[host."http://%s"]
  capabilities = ["pull", "resolve", "push"]
`, RegistryAddr, RegistryAddr)},

		// firewall: dockerd sets the FORWARD policy to DROP and
		// br_netfilter is on, so pod -> Service -> pod needs explicit
		// accepts.
		{path: p("cni", "net.d", "10-testship.conflist"), daemons: []string{"containerd"}, content: fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "testship",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": %q,
        "ranges": [[{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"}
  ]
}
`, p("cni", "ipam"), podCIDR)},

		{path: p("kubelet", "config.yaml"), daemons: []string{"kubelet"}, content: fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
# Pods must not inherit the host's resolver (it points off the machine);
# cluster DNS is CoreDNS on the node IP.
resolvConf: ""
clusterDNS: [%q]
clusterDomain: %s
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %s
authorization:
  mode: Webhook
readOnlyPort: 0
tlsCertFile: %s
tlsPrivateKeyFile: %s
podLogsDir: %s
volumePluginDir: %s
serializeImagePulls: false
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%%
  nodefs.inodesFree: 2%%
  imagefs.available: 2%%
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
# The API serves only the current container log file: a follower that
# reconnects after a rotation cannot get the rotated lines back, and a
# rotation can end a follow stream in the middle of a line. Tests print a
# lot; rotate late.
containerLogMaxSize: 200Mi
containerLogMaxFiles: 2
`, s.containerdSock(), s.nodeIP, clusterDomain, s.pki.path("ca.crt"), s.pki.path("kubelet.crt"), s.pki.path("kubelet.key"),
			p("kubelet", "pod-logs"), p("kubelet", "volume-plugins"))},

		// minSyncPeriod: a deploy changes a Service's EndpointSlices several
		// times in a row, and kube-proxy delays syncs closer than this (1 s
		// by default), so a test connecting right after its deploy could
		// find the Service unprogrammed. 0 would mean "no delay" but the
		// file's defaulting turns 0 into 1 s; 100ms still merges bursts.
		{path: p("kube-proxy", "config.yaml"), daemons: []string{"kube-proxy"}, content: fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
mode: iptables
clusterCIDR: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
iptables:
  minSyncPeriod: 100ms
`, s.kubeconfig("kube-proxy"), s.nodeName, clusterCIDR)},

		// Bound to the node IP: it exists before the first pod, unlike cni0.
		// No forward: the host's resolver points off the machine.
		{path: p("coredns", "Corefile"), daemons: []string{"coredns"}, content: fmt.Sprintf(`.:53 {
    bind %s
    errors
    kubernetes %s in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loadbalance
}
`, s.nodeIP, clusterDomain, Kubeconfig(s.o.Dir))},
	}
}

// writeConfigs writes every config file that differs from what is on
// disk, marks the daemons that must restart, and returns the files written.
func (s *stack) writeConfigs() ([]string, error) {
	var written []string
	for _, f := range s.configFiles() {
		old, err := os.ReadFile(f.path)
		if err == nil && bytes.Equal(old, []byte(f.content)) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return written, err
		}
		if err := os.WriteFile(f.path, []byte(f.content), 0o644); err != nil {
			return written, err
		}
		rel, _ := filepath.Rel(s.o.Dir, f.path)
		written = append(written, rel)
		if len(old) > 0 {
			for _, d := range f.daemons {
				s.restart[d] = rel + " changed"
			}
		}
	}
	return written, nil
}
