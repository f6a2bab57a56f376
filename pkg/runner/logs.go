package runner

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/testship/testship/pkg/testlog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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

// output writes the lines of every pod of a run to WaitOptions.Out, whole
// lines at a time (the pods' lines interleave, never mix), each prefixed
// with its pod's index in a multi-pod run, and passes them to the
// OnLine/OnPodLine hooks.
type output struct {
	mu     sync.Mutex
	out    io.Writer
	prefix func(index int) string // nil: no prefix (a single-pod run)
	onLine func(line []byte)
	onPod  func(index int, line []byte)
	buf    []byte
}

// newOutput returns the output of a run of count pods; a multi-pod run's
// lines are prefixed with "[i] ", the index right-aligned to the width of
// the largest, and coloured when color is set (a terminal).
func newOutput(wo WaitOptions, count int, multi bool) *output {
	o := &output{out: wo.Out, onLine: wo.OnLine, onPod: wo.OnPodLine}
	if multi {
		o.prefix = indexPrefix(count, wo.Color)
	}
	return o
}

// indexColors are the ANSI colours that tell the pods apart (no red: that
// says "failed").
var indexColors = []int{36, 33, 35, 32, 34, 96, 93, 95, 92, 94}

// indexPrefix returns the prefix function for a run of count pods.
func indexPrefix(count int, color bool) func(int) string {
	width := len(strconv.Itoa(max(count-1, 0)))
	cache := map[int]string{}
	return func(i int) string {
		if p, ok := cache[i]; ok {
			return p
		}
		p := IndexPrefix(i, count)
		if color {
			p = fmt.Sprintf("\x1b[%dm[%*d]\x1b[0m ", indexColors[i%len(indexColors)], width, i)
		}
		cache[i] = p
		return p
	}
}

// line writes one line of pod index (its newline included, none at the
// very end of the output).
func (o *output) line(index int, line []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = o.buf[:0]
	if o.prefix != nil {
		o.buf = append(o.buf, o.prefix(index)...)
	}
	o.buf = append(o.buf, line...)
	if len(line) == 0 || line[len(line)-1] != '\n' {
		o.buf = append(o.buf, '\n')
	}
	o.out.Write(o.buf)
	if o.onLine != nil {
		o.onLine(line)
	}
	if o.onPod != nil {
		o.onPod(index, line)
	}
}

// follower streams one pod's output to the run's output exactly once and
// in order, across broken streams, until the pod's container has
// terminated (then it settles the log: see settleLogs) or the pod is gone.
// Everything it received is counted (Counter, for the entrypoint's record)
// and read for test results (Summary).
type follower struct {
	ns, pod, runID string
	index          int
	uid            types.UID
	log            io.Writer
	multi          bool

	resumer *lineResumer
	counter *testlog.Counter
	summary Summary

	terminated chan struct{} // closed when the container terminated (or the pod is gone)
	termOnce   sync.Once
	done       chan error // the follower's end: nil when the log was read to its end
	cancel     context.CancelFunc
}

func newFollower(ns, runID string, pod *corev1.Pod, index int, multi bool, out *output, log io.Writer, fromNow bool) *follower {
	f := &follower{ns: ns, pod: pod.Name, runID: runID, index: index, uid: pod.UID, log: log, multi: multi,
		counter: testlog.NewCounter(), terminated: make(chan struct{}), done: make(chan error, 1)}
	f.resumer = &lineResumer{emit: func(line []byte) {
		f.counter.Write(line)
		f.summary.Observe(line)
		out.line(index, line)
	}, gap: func(from, to time.Time) {
		fmt.Fprintf(log, "testship: WARNING: %soutput written between %s and %s is lost: the log stream broke and the kubelet no longer has those lines (it rotated the container log; raise the kubelet's containerLogMaxSize)\n",
			f.who(), from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}}
	if fromNow {
		f.resumer.lastTS = time.Now()
	}
	return f
}

// who names the pod in messages of a multi-pod run ("" in a single-pod run).
func (f *follower) who() string {
	if !f.multi {
		return ""
	}
	return fmt.Sprintf("pod %s (index %d): ", f.pod, f.index)
}

// markTerminated tells the follower the container has terminated: it
// settles the log and ends.
func (f *follower) markTerminated() { f.termOnce.Do(func() { close(f.terminated) }) }

func (f *follower) isTerminated() bool {
	select {
	case <-f.terminated:
		return true
	default:
		return false
	}
}

// start runs the follower in its own goroutine.
func (f *follower) start(ctx context.Context, cs kubernetes.Interface) {
	ctx, f.cancel = context.WithCancel(ctx)
	go func() { f.done <- f.follow(ctx, cs) }()
}

// wait waits for the follower's end (once the log was read to its end,
// after markTerminated, or after stop); its counts are then final.
func (f *follower) wait() {
	if f.cancel == nil {
		return // ended and waited for already
	}
	<-f.done
	f.cancel()
	f.cancel = nil
}

// stop stops the follower where it is and waits for it.
func (f *follower) stop() {
	if f.cancel != nil {
		f.cancel()
	}
	f.wait()
}

func (f *follower) follow(ctx context.Context, cs kubernetes.Interface) error {
	broken := 0
	for {
		final := f.isTerminated()
		seen := f.resumer.lines
		var err error
		if final {
			err = settleLogs(ctx, cs, f.ns, f.pod, f.resumer)
		} else {
			err = streamLogs(ctx, cs, f.ns, f.pod, true, false, f.resumer)
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil && final:
			return nil
		case apierrors.IsNotFound(err):
			return nil // the pod is gone: what was shown is all there is
		case err != nil:
			// A broken stream: resume at once (after a short pause when
			// it keeps breaking, e.g. while the kubelet restarts).
			if f.resumer.lines > seen {
				broken = 0 // it made progress
			}
			broken++
			fmt.Fprintf(f.log, "testship: log stream of run %s broke (%s%v); resuming after line %d\n", f.runID, f.who(), err, f.resumer.lines)
			if broken > 3 {
				select {
				case <-time.After(500 * time.Millisecond):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			continue
		}
		broken = 0
		// The stream ended: the container exited, or the connection broke.
		// Wait for the pod watch to say which (a broken stream is resumed
		// after a second at most).
		select {
		case <-f.terminated:
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
