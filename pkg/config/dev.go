package config

import (
	"net"
	"os"
	"path/filepath"
	"strings"
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

// LoadDev reads and validates the local stack's variables (the dev area
// of Load).
func LoadDev() (Dev, error) {
	c := &checker{}
	d := loadDev(c)
	return d, c.err()
}

func loadDev(c *checker) Dev {
	d := Dev{Dir: Get(DevDir), CacheDir: Get(CacheDir), NodeIP: Get(DevNodeIP)}
	checkStackDir(c, DevDir, d.Dir, "/var/lib/testship/dev")
	checkStackDir(c, CacheDir, d.CacheDir, "/var/cache/testship")
	// Unix socket paths are limited to 107 bytes; containerd's lives under
	// the dev dir.
	if len(d.Dir) > 60 {
		c.bad(DevDir, d.Dir, "", "a path of at most 60 characters (unix sockets live under it)")
	}
	if d.NodeIP != "" {
		if ip := net.ParseIP(d.NodeIP); ip == nil || ip.To4() == nil || ip.IsLoopback() {
			c.bad(DevNodeIP, d.NodeIP, "", "a non-loopback IPv4 address of this machine")
		}
	}
	d.Wipe = c.bool(DevWipe)
	return d
}

// systemDirs hold the operating system (and everything below them does,
// for the first group); dev:down removes what it finds under the stack's
// directories, so these are refused.
var (
	systemTrees = []string{"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin", "/sys", "/usr"}
	systemDirs  = []string{"/", "/home", "/media", "/mnt", "/opt", "/root", "/run", "/snap", "/srv", "/tmp", "/var",
		"/var/cache", "/var/lib", "/var/log", "/var/run", "/var/tmp", "/var/spool", "/var/mail", "/var/opt", "/var/local"}
)

// checkStackDir checks a directory the local stack owns: absolute, clean,
// not a system directory nor a home directory.
func checkStackDir(c *checker, varName, dir, example string) {
	want := "an absolute directory of testship's own such as " + example + " (not /, a system directory or a home directory)"
	if !filepath.IsAbs(dir) {
		c.bad(varName, dir, "", want)
		return
	}
	clean := filepath.Clean(dir)
	for _, t := range systemTrees {
		if clean == t || strings.HasPrefix(clean, t+"/") {
			c.bad(varName, dir, clean+" is a system directory", want)
			return
		}
	}
	for _, s := range systemDirs {
		if clean == s {
			c.bad(varName, dir, clean+" is a system directory", want)
			return
		}
	}
	home, _ := os.UserHomeDir()
	if home != "" && home != "/" && clean == filepath.Clean(home) || filepath.Dir(clean) == "/home" {
		c.bad(varName, dir, clean+" is a home directory", want)
	}
}
