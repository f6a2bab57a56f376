package entrypoint

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeAPI is an API server that streams watch events for the Job: each
// connection gets the next script, a list of events (a "" entry holds the
// stream open until the client leaves; the end of a script ends the
// stream, as an API server's watch timeout does).
type fakeAPI struct {
	t       *testing.T
	scripts [][]string
	status  int // answer every request with this status instead
	conns   atomic.Int32
	bad     atomic.Value // the first request that was not what the entrypoint should send
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(f.conns.Add(1)) - 1
	if r.URL.Path != "/apis/batch/v1/namespaces/ns-1/jobs" || r.URL.Query().Get("fieldSelector") != "metadata.name=job-1" ||
		r.URL.Query().Get("watch") != "1" || r.Header.Get("Authorization") != "Bearer tok" {
		f.bad.CompareAndSwap(nil, fmt.Sprintf("%s %s", r.URL, r.Header.Get("Authorization")))
	}
	if f.status != 0 {
		http.Error(w, `{"kind":"Status","message":"jobs.batch \"job-1\" is forbidden"}`, f.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	script := f.scripts[min(n, len(f.scripts)-1)]
	for _, ev := range script {
		if ev == "" {
			<-r.Context().Done()
			return
		}
		fmt.Fprintln(w, ev)
		w.(http.Flusher).Flush()
		time.Sleep(20 * time.Millisecond)
	}
}

func job(typ string, ready, succeeded int) string {
	return fmt.Sprintf(`{"type":%q,"object":{"kind":"Job","metadata":{"name":"job-1"},"status":{"active":3,"ready":%d,"succeeded":%d}}}`, typ, ready, succeeded)
}

// cluster starts the fake API over TLS and returns how to reach it, with
// its CA and a token in files as in a pod.
func cluster(t *testing.T, f *fakeAPI) Cluster {
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o644)
	os.WriteFile(filepath.Join(dir, "token"), []byte("tok\n"), 0o600)
	return Cluster{Host: srv.URL, CAFile: filepath.Join(dir, "ca.crt"), TokenFile: filepath.Join(dir, "token"), Namespace: "ns-1"}
}

var sigterm os.Signal = syscall.SIGTERM

var syncEnv = []string{"TESTSHIP_POD_MODE=copy", "TESTSHIP_COUNT=3", "TESTSHIP_INDEX=1", "TESTSHIP_SYNC_START=true", "TESTSHIP_JOB_NAME=job-1"}

func TestSyncStartWaitsForAllCopies(t *testing.T) {
	f := &fakeAPI{t: t, scripts: [][]string{
		// The first watch ends before all run (the server's timeout) …
		{job("ADDED", 1, 0), job("MODIFIED", 2, 0)},
		// … the next starts from the current state.
		{job("ADDED", 2, 0), `{"type":"BOOKMARK","object":{"kind":"Job","metadata":{"resourceVersion":"7"}}}`, job("MODIFIED", 3, 0), ""},
	}}
	code, out, _ := fixtureRun(t, Options{Cluster: cluster(t, f)}, "gotest", syncEnv...)
	if bad := f.bad.Load(); bad != nil {
		t.Fatalf("unexpected request %v", bad)
	}
	if code != 1 || f.conns.Load() != 2 {
		t.Fatalf("exit %d after %d watches\n%s", code, f.conns.Load(), out)
	}
	wait := strings.Index(out, "testship: waiting until all 3 copies of Job job-1 run")
	release := strings.Index(out, "testship: all 3 copies running; starting\n")
	test := strings.Index(out, "=== RUN")
	if wait != 0 || release < wait || test < release {
		t.Fatalf("waiting line, release line and test not in order:\n%s", out)
	}
}

func TestSyncStartCountsFinishedCopies(t *testing.T) {
	f := &fakeAPI{t: t, scripts: [][]string{{job("ADDED", 1, 2), ""}}}
	if code, out, _ := fixtureRun(t, Options{Cluster: cluster(t, f)}, "gotest", syncEnv...); code != 1 || !strings.Contains(out, "all 3 copies running") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

func TestSyncStartRefused(t *testing.T) {
	f := &fakeAPI{t: t, status: http.StatusForbidden}
	code, out, rec := fixtureRun(t, Options{Cluster: cluster(t, f)}, "gotest", syncEnv...)
	if code != ExitSync || !strings.Contains(rec.Error, "HTTP 403") || !strings.Contains(rec.Error, `get, list and watch on jobs.batch "job-1"`) || strings.Contains(out, "=== RUN") {
		t.Fatalf("exit %d %q\n%s", code, rec.Error, out)
	}
	if f.conns.Load() != 1 {
		t.Fatalf("a refusal was retried %d times", f.conns.Load()-1)
	}
}

func TestSyncStartTimesOut(t *testing.T) {
	f := &fakeAPI{t: t, scripts: [][]string{{job("ADDED", 2, 0), ""}}}
	code, out, rec := fixtureRun(t, Options{Cluster: cluster(t, f), SyncTimeout: 300 * time.Millisecond}, "gotest", syncEnv...)
	if code != ExitSync || !strings.Contains(rec.Error, "not all 3 copies of Job job-1 ran within 300ms") || strings.Contains(out, "=== RUN") {
		t.Fatalf("exit %d %q\n%s", code, rec.Error, out)
	}
}

func TestSyncStartJobDeleted(t *testing.T) {
	f := &fakeAPI{t: t, scripts: [][]string{{job("ADDED", 1, 0), job("DELETED", 1, 0)}}}
	code, _, rec := fixtureRun(t, Options{Cluster: cluster(t, f)}, "gotest", syncEnv...)
	if code != ExitSync || !strings.Contains(rec.Error, "Job job-1 was deleted") {
		t.Fatalf("exit %d %q", code, rec.Error)
	}
}

func TestSyncStartSigterm(t *testing.T) {
	f := &fakeAPI{t: t, scripts: [][]string{{job("ADDED", 1, 0), ""}}}
	sigs := make(chan os.Signal, 1)
	go func() {
		for f.conns.Load() == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		sigs <- sigterm
	}()
	code, out, rec := fixtureRun(t, Options{Cluster: cluster(t, f), Signals: sigs}, "gotest", syncEnv...)
	if code != 143 || !strings.Contains(rec.Error, "SIGTERM received while waiting") || strings.Contains(out, "=== RUN") {
		t.Fatalf("exit %d %q\n%s", code, rec.Error, out)
	}
}

func TestSyncStartSingleCopyNeedsNoAPI(t *testing.T) {
	code, out, _ := fixtureRun(t, Options{Cluster: Cluster{Host: "https://127.0.0.1:1"}}, "gotest",
		"TESTSHIP_COUNT=1", "TESTSHIP_INDEX=0", "TESTSHIP_SYNC_START=true", "TESTSHIP_JOB_NAME=job-1")
	if code != 1 || strings.Contains(out, "testship:") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}
