package config

import (
	"net"
	"path/filepath"
)

// Variables of the local stack (`mage dev:up`, `dev:down`, `dev:status`).
var (
	DevDir = Declare(Var{Name: "TESTSHIP_DEV_DIR", Default: "/var/lib/testship/dev", Area: "dev",
		Help: "local stack state: PKI, configs, PID files, logs, cluster data; the admin kubeconfig is <dir>/kubeconfig"})
	CacheDir = Declare(Var{Name: "TESTSHIP_CACHE_DIR", Default: "/var/cache/testship", Area: "dev",
		Help: "built binaries, one directory per component version (kube-v1.34.4, coredns-v1.15.0)"})
	DevNodeIP = Declare(Var{Name: "TESTSHIP_DEV_NODE_IP", Area: "dev",
		Help: "the local node's IP (apiserver advertise address, cluster DNS address); default: the address of the default route's interface"})
	DevWipe = Declare(Var{Name: "DEV_WIPE", Default: "false", Area: "dev",
		Help: "with `mage dev:down`: also delete the cluster's data (etcd, images, PKI, registry storage) so the next dev:up starts afresh"})
)

// Dev is the validated configuration of the local stack.
type Dev struct {
	Dir      string // absolute
	CacheDir string // absolute
	NodeIP   string // "" means detect
	Wipe     bool
}

// LoadDev reads and validates the local stack's variables.
func LoadDev() (Dev, error) {
	d := Dev{Dir: Get(DevDir), CacheDir: Get(CacheDir), NodeIP: Get(DevNodeIP)}
	if !filepath.IsAbs(d.Dir) {
		return d, &Error{Name: DevDir, Value: d.Dir, Want: "an absolute directory path such as /var/lib/testship/dev"}
	}
	if !filepath.IsAbs(d.CacheDir) {
		return d, &Error{Name: CacheDir, Value: d.CacheDir, Want: "an absolute directory path such as /var/cache/testship"}
	}
	// Unix socket paths are limited to 107 bytes; containerd's lives under
	// the dev dir.
	if len(d.Dir) > 60 {
		return d, &Error{Name: DevDir, Value: d.Dir, Want: "a path of at most 60 characters (unix sockets live under it)"}
	}
	if d.NodeIP != "" {
		if ip := net.ParseIP(d.NodeIP); ip == nil || ip.To4() == nil || ip.IsLoopback() {
			return d, &Error{Name: DevNodeIP, Value: d.NodeIP, Want: "a non-loopback IPv4 address of this machine"}
		}
	}
	wipe, err := Bool(DevWipe)
	if err != nil {
		return d, err
	}
	d.Wipe = wipe
	return d, nil
}
