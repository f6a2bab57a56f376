package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"
)

// RetryDialTransport wraps base (http.DefaultTransport when nil) so a request
// whose connection could not be made is tried again, with short backoff, for
// up to budget (10 s when 0). Deploy waits until a Service has ready
// endpoints, but kube-proxy programs them into the node a moment later: the
// first connection to a fresh Service IP can be refused.
//
// Only connection failures are retried: a refused or reset dial, and a
// connection reset before any response to a request that is safe to repeat
// (GET, HEAD, OPTIONS). A request that got a response, of any status, is
// never repeated, nor is a POST that may have reached the server.
func RetryDialTransport(base http.RoundTripper, budget time.Duration) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if budget <= 0 {
		budget = 10 * time.Second
	}
	return &retryTransport{base: base, budget: budget}
}

type retryTransport struct {
	base   http.RoundTripper
	budget time.Duration
}

func (rt *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	deadline := time.Now().Add(rt.budget)
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		resp, err := rt.base.RoundTrip(req)
		if err == nil || !retryable(req, err) {
			return resp, err
		}
		// The body was consumed by the failed attempt: get a fresh one, or
		// give up when the request cannot provide it.
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, err
			}
			body, berr := req.GetBody()
			if berr != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		if time.Now().Add(backoff).After(deadline) {
			return nil, fmt.Errorf("%w (tried %d times in %s)", err, attempt, rt.budget)
		}
		t := time.NewTimer(backoff)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// retryable reports whether err means the request never reached a server
// that answered it: the connection was refused or reset while dialing, or
// reset before a response to a request that is safe to send twice.
func retryable(req *http.Request, err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return errors.Is(err, syscall.ECONNRESET)
	}
	return false
}
