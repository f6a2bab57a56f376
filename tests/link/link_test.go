//go:build e2e

// The link example: an integration test of the link service, deployed by
// testenv from charts/link. Run it locally (`go test -tags e2e ./tests/link`)
// or through the remote runner (mage run:remote, or ENV_JOB_IMAGE=<test image>
// for the in-test form).
package link

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/testship/testship/testenv"
)

func TestLink(t *testing.T) {
	env := testenv.New(t)
	env.Run()
	if env.WillUseRemoteRunner() {
		return
	}
	base := env.ServiceURL("link", 80)
	pods := env.PodURLs("app.kubernetes.io/name=link", 8080)
	t.Logf("link service at %s, replicas at %v", base, pods)
	if len(pods) < 2 {
		t.Fatalf("want at least 2 ready replicas of link, got %d", len(pods))
	}
	// kube-proxy programs a new Service's IP a moment after its endpoints
	// are ready: the transport retries connections refused meanwhile.
	client := &http.Client{Timeout: 20 * time.Second, Transport: testenv.RetryDialTransport(nil, 10*time.Second),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	before := stats(t, client, base)

	// Create links through the Service.
	want := map[string]string{}
	for i := 0; i < 3; i++ {
		target := fmt.Sprintf("https://example.com/%s/%d", env.Namespace(), i)
		body, _ := json.Marshal(map[string]string{"url": target})
		resp, err := client.Post(base+"/links", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("create link: %v", err)
		}
		var l struct{ Code, URL string }
		err = json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || err != nil || l.Code == "" {
			t.Fatalf("create link: status %d, body %+v, err %v", resp.StatusCode, l, err)
		}
		want[l.Code] = target
	}

	// Every replica resolves every link.
	for _, pod := range pods {
		for code, target := range want {
			resp, err := client.Get(pod + "/r/" + code)
			if err != nil {
				t.Fatalf("resolve %s at %s: %v", code, pod, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != target {
				t.Errorf("replica %s (%s): /r/%s = %d %q, want 302 %q",
					resp.Header.Get("X-Link-Pod"), pod, code, resp.StatusCode, resp.Header.Get("Location"), target)
			}
		}
	}

	// Unknown codes are 404 everywhere.
	resp, err := client.Get(base + "/r/does-not-exist")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown code: status %d, want 404", resp.StatusCode)
	}

	// The counter is shared by the replicas: it grew by exactly what this
	// run created (the witness that the test logic ran once), or by at
	// least that when copies of this test run at once (TESTSHIP_PARALLEL).
	after := stats(t, client, base)
	if _, copies := env.Pod(); copies == 1 && after-before != len(want) {
		t.Errorf("created counter went from %d to %d, want +%d", before, after, len(want))
	} else if after-before < len(want) {
		t.Errorf("created counter went from %d to %d, want at least +%d (%d copies)", before, after, len(want), copies)
	}
	t.Logf("link: %d links resolved by %d replicas; created counter %d -> %d", len(want), len(pods), before, after)

	soak(t, client, base, want)
}

// soak keeps resolving the links through the Service for LINK_SOAK (a Go
// duration; the remote runner passes TEST_LINK_SOAK as LINK_SOAK), the
// form a long-running test takes. Unset, it returns at once.
func soak(t *testing.T, client *http.Client, base string, want map[string]string) {
	val := os.Getenv("LINK_SOAK")
	if val == "" {
		return
	}
	d, err := time.ParseDuration(val)
	if err != nil || d <= 0 {
		t.Fatalf("LINK_SOAK=%q: want a positive Go duration such as 30s or 2h", val)
	}
	rounds := 0
	for end := time.Now().Add(d); time.Now().Before(end); rounds++ {
		for code, target := range want {
			resp, err := client.Get(base + "/r/" + code)
			if err != nil {
				t.Fatalf("soak round %d: resolve %s: %v", rounds, code, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != target {
				t.Fatalf("soak round %d: /r/%s = %d %q, want 302 %q", rounds, code, resp.StatusCode, resp.Header.Get("Location"), target)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("link: soaked %s, %d rounds of %d links", d, rounds, len(want))
}

func stats(t *testing.T, c *http.Client, base string) int {
	t.Helper()
	resp, err := c.Get(base + "/stats")
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	defer resp.Body.Close()
	var s struct{ Created int }
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stats: status %d, err %v", resp.StatusCode, err)
	}
	return s.Created
}
