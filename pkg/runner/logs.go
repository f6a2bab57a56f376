package runner

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// lineResumer reads a container's log as timestamped lines
// ("<RFC3339Nano> <text>\n", the kubelet's timestamps=true form) across
// several streams and passes each line's text on exactly once, in order.
//
// A new stream resumes with sinceTime set to the timestamp of the last line
// passed on; the API server truncates that to the second and several lines
// can share one timestamp, so the resumer drops lines older than the last
// timestamp and, of the lines carrying exactly that timestamp, as many as it
// already passed on.
type lineResumer struct {
	emit func(line []byte) // the line's text with its newline (none at the very end)
	// gap, if set, hears of a resumed stream that no longer holds the last
	// line passed on: the lines between from and to are lost (the kubelet
	// serves only the current log file, so a rotation loses them).
	gap func(from, to time.Time)

	lastTS time.Time // timestamp of the last line passed on
	atLast int       // how many lines with lastTS were passed on
	lines  int64     // lines passed on in total

	// pending is the unterminated piece a non-final read ended on.
	pending []byte

	// per stream
	skipTS   time.Time
	skipN    int
	resuming bool
}

// since is the sinceTime for the next stream (nil for the first).
func (r *lineResumer) since() *metav1.Time {
	if r.lastTS.IsZero() {
		return nil
	}
	return &metav1.Time{Time: r.lastTS}
}

// begin starts a new stream.
func (r *lineResumer) begin() {
	r.skipTS, r.skipN = r.lastTS, r.atLast
	r.resuming = !r.lastTS.IsZero()
}

// line handles one raw line of the stream, its newline included.
func (r *lineResumer) line(raw []byte) {
	text := raw
	var ts time.Time
	if sp := bytes.IndexByte(raw, ' '); sp > 0 && sp <= 40 {
		if t, err := time.Parse(time.RFC3339Nano, string(raw[:sp])); err == nil {
			ts, text = t, raw[sp+1:]
		}
	}
	if ts.IsZero() {
		// No timestamp: the rest of a long line whose start was older than
		// sinceTime (the kubelet prefixes only a line's first chunk), or a
		// message of the kubelet's. While resuming it belongs to what was
		// already shown; otherwise pass it on under the last timestamp.
		if r.resuming {
			return
		}
		r.pass(r.lastTS, text)
		return
	}
	if r.resuming {
		if ts.Before(r.skipTS) {
			return
		}
		if ts.Equal(r.skipTS) && r.skipN > 0 {
			r.skipN--
			return
		}
		// sinceTime is at or before the last line shown, so a complete
		// log repeats every line at skipTS first; one that starts later,
		// or repeats fewer, has lost lines.
		if r.skipN > 0 && r.gap != nil {
			r.gap(r.skipTS, ts)
		}
		r.resuming = false
	}
	r.pass(ts, text)
}

func (r *lineResumer) pass(ts time.Time, text []byte) {
	if ts.Equal(r.lastTS) {
		r.atLast++
	} else {
		r.lastTS, r.atLast = ts, 1
	}
	r.lines++
	r.emit(text)
}

// read reads one stream to its end. Complete lines are handled as they
// arrive; an unterminated last piece is handled only when final is true
// (the container has exited and this stream started after that), since on
// a broken stream it is the start of a line that the next stream repeats.
// It returns nil on a clean end of stream, else the read error.
func (r *lineResumer) read(body io.Reader, final bool) error {
	r.begin()
	br := bufio.NewReaderSize(body, 64<<10)
	var long []byte // a line longer than the buffer, being assembled
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if long != nil {
				long = append(long, chunk...)
				r.line(long)
				long = nil
			} else {
				r.line(chunk)
			}
			continue
		case errors.Is(err, bufio.ErrBufferFull):
			long = append(long, chunk...)
			continue
		}
		// end of stream (clean or not): chunk holds the unterminated rest
		if len(chunk) > 0 {
			long = append(long, chunk...)
		}
		r.pending = nil
		if err == io.EOF {
			if final && len(long) > 0 {
				r.line(long)
			} else if len(long) > 0 {
				r.pending = append([]byte(nil), long...)
			}
			return nil
		}
		return err
	}
}

// settleLogs reads the log of a container that has exited. The runtime may
// still be copying the last output into the log file when the exit is
// reported, and no event says when it is done, so the log is read again,
// briefly apart, until a read brings nothing new; only then is an
// unterminated last piece taken as the final line. At most ~3 s.
//
// Output the runtime never copies is beyond reach: containerd 1.6 can drop
// what is still in the container's stdout pipe when the process exits.
func settleLogs(ctx context.Context, cs kubernetes.Interface, ns, pod string, r *lineResumer) error {
	const interval, maxReads = 50 * time.Millisecond, 60
	var prev []byte
	for i := 0; ; i++ {
		seen := r.lines
		if err := streamLogs(ctx, cs, ns, pod, false, false, r); err != nil {
			return err
		}
		settled := i > 0 && r.lines == seen && bytes.Equal(r.pending, prev)
		if settled || i >= maxReads {
			if len(r.pending) > 0 {
				r.line(r.pending)
				r.pending = nil
			}
			return nil
		}
		prev = r.pending
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// streamLogs opens the test container's log once (follow or not) from where
// the resumer stopped and reads it to its end.
func streamLogs(ctx context.Context, cs kubernetes.Interface, ns, pod string, follow, final bool, r *lineResumer) error {
	req := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{
		Container:  ContainerName,
		Follow:     follow,
		Timestamps: true,
		SinceTime:  r.since(),
	})
	body, err := req.Stream(ctx)
	if err != nil {
		return err
	}
	defer body.Close()
	return r.read(body, final)
}
