package entrypoint

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// The pod's service account files, mounted by Kubernetes.
const (
	ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// Cluster is how the entrypoint reaches the API server for the
// synchronised start: plain net/http (no client-go, to stay small).
type Cluster struct {
	Host      string // https://host:port
	TokenFile string // re-read for every request (tokens rotate)
	CAFile    string
	Namespace string
	// Client, when set, is used instead of one built from CAFile.
	Client *http.Client
}

// InCluster describes the API server as a pod sees it: KUBERNETES_SERVICE_HOST
// and _PORT, and the service account's token, CA and namespace files.
func InCluster(getenv func(string) string) (Cluster, error) {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return Cluster{}, errors.New("KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set: the synchronised start runs only in a Kubernetes pod")
	}
	ns, err := os.ReadFile(ServiceAccountDir + "/namespace")
	if err != nil {
		return Cluster{}, fmt.Errorf("the pod's namespace: %w (the run's pod needs automountServiceAccountToken)", err)
	}
	return Cluster{Host: "https://" + net.JoinHostPort(host, port), TokenFile: ServiceAccountDir + "/token",
		CAFile: ServiceAccountDir + "/ca.crt", Namespace: strings.TrimSpace(string(ns))}, nil
}

func (c Cluster) client() (*http.Client, error) {
	if c.Client != nil {
		return c.Client, nil
	}
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("the API server's CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the API server's CA %s holds no PEM certificate", c.CAFile)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext: (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext}
	return &http.Client{Transport: tr}, nil
}

// WaitReady watches the Job until `status.ready + status.succeeded +
// status.failed` reaches count: every pod runs (the pods have no readiness
// probe, so a running entrypoint is ready). Pods that already finished
// count, so a copy whose watch started late is not held by copies that
// were released and are done. The watch is re-opened (from the current
// state) when the API server ends it; it returns ctx's error when ctx ends
// first. It needs get, list and watch on the Job.
func (c Cluster) WaitReady(ctx context.Context, job string, count int) error {
	hc, err := c.client()
	if err != nil {
		return err
	}
	u := c.Host + "/apis/batch/v1/namespaces/" + url.PathEscape(c.Namespace) + "/jobs?" +
		url.Values{"fieldSelector": {"metadata.name=" + job}, "watch": {"1"}}.Encode()
	backoff := 200 * time.Millisecond
	for {
		done, err := c.watchOnce(ctx, hc, u, job, count)
		if done {
			return nil
		}
		var fatal *fatalError
		switch {
		case ctx.Err() != nil:
			if err != nil {
				return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
			}
			return ctx.Err()
		case errors.As(err, &fatal):
			return fatal.err
		case err == nil: // the server ended the watch: re-open at once
			backoff = 200 * time.Millisecond
			continue
		}
		select { // a transient failure: retry, backing off up to 5 s
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

type fatalError struct{ err error }

func (f *fatalError) Error() string { return f.err.Error() }

// watchEvent is one event of a watch stream; Object is a Job, or a Status
// for an ERROR event.
type watchEvent struct {
	Type   string `json:"type"`
	Object struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Status struct {
			Ready     int `json:"ready"`
			Succeeded int `json:"succeeded"`
			Failed    int `json:"failed"`
		} `json:"status"`
		// An ERROR event's Status.
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"object"`
}

// watchOnce reads one watch stream: done when the count is reached; a nil
// error when the stream ended normally; a *fatalError when retrying cannot
// help (refused, the Job deleted).
func (c Cluster) watchOnce(ctx context.Context, hc *http.Client, u, job string, count int) (bool, error) {
	token, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return false, &fatalError{fmt.Errorf("the service account token: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, &fatalError{err}
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("watch Job %s: %w", job, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err := fmt.Errorf("watch Job %s in namespace %s: HTTP %d: %s", job, c.Namespace, resp.StatusCode, strings.TrimSpace(string(body)))
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			return false, &fatalError{fmt.Errorf("%w (the run's Role must grant get, list and watch on jobs.batch %q)", err, job)}
		}
		return false, err
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev watchEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return false, nil
			}
			return false, fmt.Errorf("watch Job %s: %w", job, err)
		}
		switch ev.Type {
		case "ADDED", "MODIFIED":
			s := ev.Object.Status
			if s.Ready+s.Succeeded+s.Failed >= count {
				return true, nil
			}
		case "DELETED":
			return false, &fatalError{fmt.Errorf("Job %s was deleted while its copies waited for each other", job)}
		case "ERROR":
			if ev.Object.Code == http.StatusGone {
				return false, nil // too old: a new watch starts from now
			}
			return false, fmt.Errorf("watch Job %s: %d %s", job, ev.Object.Code, ev.Object.Message)
		}
	}
}
