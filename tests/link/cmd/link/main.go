// Command link serves the link example service (see package linkserver).
//
// In a pod it keeps links in the ConfigMap named by LINK_STORE (in the pod's
// namespace, POD_NAMESPACE), so all replicas share them; without LINK_STORE
// it keeps them in memory. It listens on LINK_ADDR (default :8080) and stops
// gracefully on SIGTERM.
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/testship/testship/tests/link/linkserver"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
)

func main() {
	logger := log.New(os.Stderr, "link: ", log.LstdFlags|log.Lmsgprefix)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	srv := &linkserver.Server{
		Pod:     envOr("POD_NAME", hostname()),
		Message: os.Getenv("LINK_MESSAGE"),
		Log:     logger,
	}
	if name := os.Getenv("LINK_STORE"); name != "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			logger.Fatalf("LINK_STORE=%s needs the in-cluster service account: %v", name, err)
		}
		cs, err := corev1client.NewForConfig(rc)
		if err != nil {
			logger.Fatal(err)
		}
		ns := os.Getenv("POD_NAMESPACE")
		if ns == "" {
			b, _ := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
			ns = string(b)
		}
		srv.Store = &linkserver.ConfigMap{Client: cs, Namespace: ns, Name: name}
		logger.Printf("store: ConfigMap %s/%s", ns, name)
	} else {
		srv.Store = linkserver.NewMemory()
		logger.Printf("store: memory (set LINK_STORE to share links between replicas)")
	}

	hs := &http.Server{Addr: envOr("LINK_ADDR", ":8080"), Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	logger.Printf("pod %s listening on %s", srv.Pod, hs.Addr)
	if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Fatal(err)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
