package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
)

// Kubeconfig is client-go's own variable: the cluster testship talks to.
var Kubeconfig = Declare(Var{Name: "KUBECONFIG", Area: "kube",
	Help: "kubeconfig file(s), ':'-separated; unset: in-cluster service account, ~/.kube/config, then the local stack's kubeconfig"})

const kubeWant = "readable kubeconfig file(s), ':'-separated, whose current-context names a context with a cluster and a user (kubectl config use-context NAME)"

// yamlLine keeps only the position of a parse error: the parser's message
// may quote the file's content, credentials included.
var yamlLine = regexp.MustCompile(`line \d+`)

// checkKube checks KUBECONFIG when set, and otherwise ~/.kube/config when
// it exists (the file kube.Load would use outside a pod), without
// contacting the cluster.
func checkKube(c *checker) {
	val := os.Getenv(Kubeconfig)
	var paths []string
	switch {
	case val != "":
		for _, p := range filepath.SplitList(val) {
			if p != "" {
				paths = append(paths, p)
			}
		}
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		return // in a pod: the service account
	default:
		home, err := os.UserHomeDir()
		if err != nil {
			return
		}
		p := filepath.Join(home, ".kube", "config")
		if _, err := os.Stat(p); err != nil {
			return // kube.Load goes on to the local stack's kubeconfig
		}
		paths = []string{p}
	}
	show := func(p string) (string, string) {
		if val == "" {
			return p, " (~/.kube/config, used as KUBECONFIG is unset)"
		}
		return val, ""
	}
	bad := false
	for _, p := range paths {
		v, where := show(p)
		st, err := os.Stat(p)
		switch {
		case err != nil:
			c.bad(Kubeconfig, v, fmt.Sprintf("%s does not exist or cannot be read%s", p, where), kubeWant)
		case st.IsDir():
			c.bad(Kubeconfig, v, fmt.Sprintf("%s is a directory%s", p, where), kubeWant)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				c.bad(Kubeconfig, v, fmt.Sprintf("%s cannot be read%s", p, where), kubeWant)
			} else if _, err := clientcmd.Load(data); err != nil {
				at := yamlLine.FindString(err.Error())
				if at != "" {
					at = " at " + at
				}
				c.bad(Kubeconfig, v, fmt.Sprintf("%s is not a kubeconfig file (cannot parse it%s)%s", p, at, where), kubeWant)
			} else {
				continue
			}
		}
		bad = true
	}
	if bad {
		return
	}
	raw, err := (&clientcmd.ClientConfigLoadingRules{Precedence: paths}).Load()
	v, where := show(paths[0])
	if err != nil {
		c.bad(Kubeconfig, v, "the files cannot be merged"+where, kubeWant)
		return
	}
	var names []string
	for n := range raw.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	known := "contexts: " + strings.Join(names, ", ")
	if len(names) == 0 {
		known = "it defines no context"
	}
	ctx, ok := raw.Contexts[raw.CurrentContext]
	switch {
	case raw.CurrentContext == "":
		c.bad(Kubeconfig, v, "no current-context is set ("+known+")"+where, kubeWant)
	case !ok:
		c.bad(Kubeconfig, v, fmt.Sprintf("current-context %q names no context (%s)%s", raw.CurrentContext, known, where), kubeWant)
	case raw.Clusters[ctx.Cluster] == nil:
		c.bad(Kubeconfig, v, fmt.Sprintf("context %q names cluster %q, which is not defined%s", raw.CurrentContext, ctx.Cluster, where), kubeWant)
	case raw.Clusters[ctx.Cluster].Server == "":
		c.bad(Kubeconfig, v, fmt.Sprintf("cluster %q has no server%s", ctx.Cluster, where), kubeWant)
	case ctx.AuthInfo != "" && raw.AuthInfos[ctx.AuthInfo] == nil:
		c.bad(Kubeconfig, v, fmt.Sprintf("context %q names user %q, which is not defined%s", raw.CurrentContext, ctx.AuthInfo, where), kubeWant)
	}
}
