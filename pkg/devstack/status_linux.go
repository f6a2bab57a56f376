//go:build linux

package devstack

import (
	"context"
	"fmt"
	"time"
)

// Status reports each component's health, without changing anything.
func Status(ctx context.Context, o Options) ([]ComponentStatus, error) {
	s, err := newStack(o)
	if err != nil {
		return nil, err
	}
	var rows []ComponentStatus
	for _, b := range []binSet{s.kube, s.coredns} {
		r := ComponentStatus{Name: b.name + " binaries", State: "missing", Detail: b.dir + " (dev:up builds them)"}
		if b.ready() {
			r.State, r.Detail = "present", b.dir
		}
		rows = append(rows, r)
	}
	for _, d := range s.daemons() {
		rows = append(rows, s.daemonStatus(ctx, d))
	}
	pr := ComponentStatus{Name: "pause image", State: "missing", Detail: pauseImage}
	if pauseImagePresent(ctx) == nil {
		pr.State = "present"
	}
	rows = append(rows, pr)
	nr := ComponentStatus{Name: "node " + s.nodeName, State: "not ready"}
	if cs, err := s.clientset(); err != nil {
		nr.Detail = err.Error()
	} else if err := s.clusterReady(ctx, cs); err != nil {
		nr.Detail = err.Error()
	} else {
		nr.State, nr.Detail = "ready", "KUBECONFIG="+Kubeconfig(s.o.Dir)
	}
	rows = append(rows, nr)
	return rows, nil
}

func (s *stack) daemonStatus(ctx context.Context, d daemon) ComponentStatus {
	r := ComponentStatus{Name: d.name}
	p, ours, stale := s.pidFile(d).running()
	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	herr := d.health(hctx)
	cancel()
	switch {
	case ours && herr == nil:
		r.State, r.PID, r.Detail = "running", p.PID, "log "+s.logPath(d.name)
	case ours:
		r.State, r.PID, r.Detail = "unhealthy", p.PID, fmt.Sprintf("%v; log %s", herr, s.logPath(d.name))
	case herr == nil && d.external:
		r.State, r.Detail = "external", "healthy, not started by testship"
	case herr == nil:
		r.State, r.Detail = "unmanaged", "answers, but not from testship's PID file"
	case stale:
		r.State, r.Detail = "stopped", "stale PID file "+s.pidFile(d).path
	default:
		r.State = "stopped"
	}
	for _, pt := range d.ports {
		if h, held := portHolder(pt.n, pt.udp, pt.ip); held && r.State != "running" && r.State != "external" && r.State != "unhealthy" {
			r.Detail += fmt.Sprintf("; port %d held by %s", pt.n, h)
		}
	}
	return r
}
