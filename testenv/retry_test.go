package testenv

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// refusingServer reserves a local port and serves HTTP on it only from the
// (refusals+1)th dial on: the dials before it are refused by the kernel, as
// a Service IP kube-proxy has not programmed yet refuses them.
type refusingServer struct {
	addr     string
	refusals int32
	dials    atomic.Int32
	requests atomic.Int32
	handler  http.HandlerFunc
	srv      *http.Server
}

func newRefusingServer(t *testing.T, refusals int32, h http.HandlerFunc) *refusingServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &refusingServer{addr: l.Addr().String(), refusals: refusals, handler: h}
	l.Close() // nothing listens: connections are refused
	t.Cleanup(func() {
		if s.srv != nil {
			s.srv.Close()
		}
	})
	return s
}

func (s *refusingServer) transport(t *testing.T) *http.Transport {
	var d net.Dialer
	return &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if s.dials.Add(1) == s.refusals+1 {
			l, err := net.Listen("tcp", s.addr)
			if err != nil {
				t.Errorf("re-open %s: %v", s.addr, err)
			} else {
				s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					s.requests.Add(1)
					s.handler(w, r)
				})}
				go s.srv.Serve(l)
			}
		}
		return d.DialContext(ctx, network, addr)
	}}
}

func TestRetryDialTransportRetriesRefusedConnections(t *testing.T) {
	s := newRefusingServer(t, 3, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusCreated)
		w.Write(body)
	})
	c := &http.Client{Transport: RetryDialTransport(s.transport(t), 10*time.Second)}
	resp, err := c.Post("http://"+s.addr+"/links", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || string(body) != "payload" {
		t.Errorf("got %d %q, want 201 with the whole body sent again", resp.StatusCode, body)
	}
	if d, r := s.dials.Load(), s.requests.Load(); d != 4 || r != 1 {
		t.Errorf("%d dials and %d requests, want 4 dials (3 refused) and 1 request", d, r)
	}
}

func TestRetryDialTransportNeverRetriesAResponse(t *testing.T) {
	s := newRefusingServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusServiceUnavailable)
	})
	c := &http.Client{Transport: RetryDialTransport(s.transport(t), 10*time.Second)}
	resp, err := c.Get("http://" + s.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || s.requests.Load() != 1 {
		t.Errorf("status %d after %d requests, want 503 after 1", resp.StatusCode, s.requests.Load())
	}
}

func TestRetryDialTransportGivesUp(t *testing.T) {
	s := newRefusingServer(t, 1<<30, nil)
	c := &http.Client{Transport: RetryDialTransport(s.transport(t), 300*time.Millisecond)}
	_, err := c.Get("http://" + s.addr + "/")
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "tried") {
		t.Fatalf("err = %v, want the refusal after several tries", err)
	}
	if d := s.dials.Load(); d < 2 {
		t.Errorf("%d dials, want retries", d)
	}
	t.Log(err)
}

// resetServer reads one request per connection and resets the connection
// without answering.
func resetServer(t *testing.T) (string, *atomic.Int32) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int32
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			http.ReadRequest(bufio.NewReader(conn))
			n.Add(1)
			conn.(*net.TCPConn).SetLinger(0) // close sends RST
			conn.Close()
		}
	}()
	return l.Addr().String(), &n
}

func TestRetryDialTransportResetBeforeResponse(t *testing.T) {
	addr, n := resetServer(t)
	c := &http.Client{Transport: RetryDialTransport(&http.Transport{DisableKeepAlives: true}, 300*time.Millisecond)}

	// A POST may have been acted on: not repeated.
	if _, err := c.Post("http://"+addr+"/links", "text/plain", strings.NewReader("x")); err == nil {
		t.Fatal("post to a resetting server succeeded")
	}
	if got := n.Load(); got != 1 {
		t.Errorf("POST sent %d times, want 1", got)
	}
	// A GET is safe to repeat.
	n.Store(0)
	_, err := c.Get("http://" + addr + "/")
	if err == nil {
		t.Fatal("get from a resetting server succeeded")
	}
	if got := n.Load(); got < 2 {
		t.Errorf("GET sent %d times, want retries (err %v)", got, err)
	}
}

func TestRetryableDialErrors(t *testing.T) {
	get, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	post, _ := http.NewRequest(http.MethodPost, "http://x/", nil)
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	read := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	timeout := &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}
	for _, c := range []struct {
		req  *http.Request
		err  error
		want bool
	}{
		{get, dial, true}, {post, dial, true}, {get, read, true}, {post, read, false}, {get, timeout, false},
		{get, io.ErrUnexpectedEOF, false},
	} {
		if got := retryable(c.req, c.err); got != c.want {
			t.Errorf("retryable(%s, %v) = %v, want %v", c.req.Method, c.err, got, c.want)
		}
	}
}
