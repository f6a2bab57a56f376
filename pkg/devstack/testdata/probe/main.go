// Command probe runs inside the local cluster's pods for pkg/devstack's
// end-to-end test. Modes:
//
//	probe exit3          write a line to stdout and one to stderr, exit 3
//	probe list-pods      list the pods of its namespace through the
//	                     kubernetes Service with rest.InClusterConfig()
//	probe serve          answer HTTP on :8080 with "hello from <hostname>"
//	probe fetch <host>   resolve host, print its addresses, GET http://<host>/
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: probe exit3|list-pods|serve|fetch <host>")
	}
	switch os.Args[1] {
	case "exit3":
		fmt.Println("probe: hello on stdout")
		fmt.Fprintln(os.Stderr, "probe: hello on stderr, exiting 3")
		os.Exit(3)
	case "list-pods":
		cfg, err := rest.InClusterConfig()
		if err != nil {
			fail("in-cluster config: %v", err)
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			fail("client: %v", err)
		}
		ns, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
		if err != nil {
			fail("namespace: %v", err)
		}
		pods, err := cs.CoreV1().Pods(string(ns)).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			fail("list pods via %s: %v", cfg.Host, err)
		}
		fmt.Printf("apiserver %s\n", cfg.Host)
		for _, p := range pods.Items {
			fmt.Printf("pod %s\n", p.Name)
		}
	case "serve":
		host, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "hello from %s", host) })
		fail("serve: %v", http.ListenAndServe(":8080", nil))
	case "fetch":
		if len(os.Args) < 3 {
			fail("fetch needs a host")
		}
		host := os.Args[2]
		var lastErr error
		// The server pod may still be starting: retry for a while.
		for i := 0; i < 60; i++ {
			addrs, err := net.LookupHost(host)
			if err != nil {
				lastErr = err
				time.Sleep(time.Second)
				continue
			}
			// A fresh connection per attempt: a kept-alive one opened before
			// kube-proxy synced would never reach the Service.
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := c.Get("http://" + host + "/")
			if err != nil {
				lastErr = err
				time.Sleep(time.Second)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// Until kube-proxy has synced, a recently reused ClusterIP may
			// still lead to another Service's pods.
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "hello from ") {
				lastErr = fmt.Errorf("unexpected answer from %s (%s): %s %q", host, strings.Join(addrs, ","), resp.Status, body)
				fmt.Fprintf(os.Stderr, "probe: %v, retrying\n", lastErr)
				time.Sleep(time.Second)
				continue
			}
			fmt.Printf("resolved %s\nbody %s\n", strings.Join(addrs, ","), body)
			return
		}
		fail("fetch %s: %v", host, lastErr)
	default:
		fail("unknown mode %q", os.Args[1])
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "probe: "+format+"\n", args...)
	os.Exit(1)
}
