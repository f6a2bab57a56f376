package linkserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// Two replicas over one ConfigMap store: a link created through one
// resolves through the other, and the counter is shared.
func TestReplicasShareConfigMap(t *testing.T) {
	cs := fake.NewSimpleClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "link-store", Namespace: "ns"}})
	newReplica := func(pod string) *httptest.Server {
		s := &Server{Store: &ConfigMap{Client: cs.CoreV1(), Namespace: "ns", Name: "link-store"}, Pod: pod}
		ts := httptest.NewServer(s.Handler())
		t.Cleanup(ts.Close)
		return ts
	}
	a, b := newReplica("a"), newReplica("b")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := http.Post(a.URL+"/links", "application/json", strings.NewReader(`{"url":"https://example.com/x","code":"x1"}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %v %v", resp.Status, err)
	}
	resp, _ = http.Post(b.URL+"/links", "application/json", strings.NewReader(`{"url":"https://example.com/y","code":"x1"}`))
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("duplicate code through the other replica: %s, want 409", resp.Status)
	}
	resp, err = noRedirect.Get(b.URL + "/r/x1")
	if err != nil || resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://example.com/x" || resp.Header.Get("X-Link-Pod") != "b" {
		t.Fatalf("resolve through b: %v %v %q", resp.Status, err, resp.Header.Get("Location"))
	}
	resp, _ = http.Post(b.URL+"/links", "application/json", strings.NewReader(`{"url":"https://example.com/z"}`))
	var l Link
	json.NewDecoder(resp.Body).Decode(&l)
	if resp.StatusCode != http.StatusCreated || len(l.Code) != 7 {
		t.Errorf("generated code: %s %+v", resp.Status, l)
	}
	resp, _ = http.Get(a.URL + "/stats")
	var st Stats
	json.NewDecoder(resp.Body).Decode(&st)
	if st.Created != 2 || st.Pod != "a" {
		t.Errorf("stats = %+v, want 2 created", st)
	}
	resp, _ = http.Get(a.URL + "/links")
	var links []Link
	json.NewDecoder(resp.Body).Decode(&links)
	if len(links) != 2 || links[0].Code > links[1].Code {
		t.Errorf("list = %+v", links)
	}
	if resp, _ := http.Get(a.URL + "/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("readyz = %s", resp.Status)
	}
}

func TestBadRequests(t *testing.T) {
	ts := httptest.NewServer((&Server{Store: NewMemory()}).Handler())
	defer ts.Close()
	for _, body := range []string{`nope`, `{"url":"ftp://x"}`, `{"url":"/relative"}`, `{"url":"https://x","code":"a b"}`} {
		resp, _ := http.Post(ts.URL+"/links", "application/json", strings.NewReader(body))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %s, want 400", body, resp.Status)
		}
	}
	if resp, _ := http.Get(ts.URL + "/r/missing"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing: %s", resp.Status)
	}
}

func TestReadyzFailsWithoutStore(t *testing.T) {
	cs := fake.NewSimpleClientset()
	ts := httptest.NewServer((&Server{Store: &ConfigMap{Client: cs.CoreV1(), Namespace: "ns", Name: "gone"}}).Handler())
	defer ts.Close()
	if resp, _ := http.Get(ts.URL + "/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz without store = %s, want 503", resp.Status)
	}
}
