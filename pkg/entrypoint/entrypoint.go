// Package entrypoint is testship's entrypoint: the small static program at
// testlog.EntrypointPath in the base image that the remote runner's pod
// starts in front of the test binary (testlog.TestBinaryPath).
//
// It selects the pod's shard of the tests (TESTSHIP_POD_MODE=shard), holds
// the start until every copy of the Job runs (TESTSHIP_SYNC_START=true),
// runs the test binary with stdout and stderr merged into one pipe, copies
// that output to its own stdout while counting and parsing it, forwards
// signals (SIGTERM, then SIGQUIT after a grace so a stuck test prints its
// goroutines), and when the binary exits writes a testlog.Record to the
// container's termination message and exits with the binary's exit code.
//
// Everything the container writes goes to its stdout, the entrypoint's own
// "testship: …" lines included, and the record's lines, bytes and digest
// cover all of it: they describe exactly the pod's log.
//
// It depends on the standard library and pkg/testlog only, to stay small.
package entrypoint

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/testship/testship/pkg/testlog"
)

// Exit codes of the entrypoint's own failures. The test binary's own code
// (0 passed, 1 failed, 2 panic/timeout/SIGQUIT, or what TestMain chose) is
// passed through, and 128+N when signal N killed it; these follow the
// shell's and `docker run`'s conventions so they are unlikely from a test.
// The record's Error field says which failure it was.
const (
	// ExitSync: the synchronised start failed (timeout, API refused).
	ExitSync = 124
	// ExitConfig: bad input (entrypoint flags, TESTSHIP_POD_MODE, the
	// shard plan, the index, TESTSHIP_COUNT, TESTSHIP_SYNC_START).
	ExitConfig = 125
	// ExitStart: the test binary exists but could not be started.
	ExitStart = 126
	// ExitNotFound: the test binary does not exist.
	ExitNotFound = 127
)

// Defaults of the entrypoint's flags.
const (
	DefaultTerminationLog = "/dev/termination-log"
	// DefaultQuitAfter is how long after SIGTERM the test binary gets
	// SIGQUIT: it fits the runner pod's terminationGracePeriodSeconds of
	// 10 s and leaves 3 s to print the goroutines and write the record.
	DefaultQuitAfter = 7 * time.Second
	// DefaultSyncTimeout bounds the synchronised start's wait.
	DefaultSyncTimeout = 10 * time.Minute
	// DefaultDrain is how long the output pipe may stay idle after the
	// binary exited before the entrypoint stops reading it (a process the
	// test started in the background may hold it open forever).
	DefaultDrain = 2 * time.Second
	// DrainMax bounds the reading after the exit to DrainMax×Drain even
	// when such a process keeps writing.
	DrainMax = 10
)

// FlagPrefix starts every entrypoint flag (given with one dash or two);
// the leading arguments that are entrypoint flags are the entrypoint's,
// the rest are the test binary's (which has its own -test.* flags).
const FlagPrefix = "-testship."

// Options configure one run of the entrypoint.
type Options struct {
	// Binary is the program to run (testlog.TestBinaryPath).
	Binary string
	// Args are the binary's arguments.
	Args []string
	// Env is the environment, for the entrypoint's variables and the
	// binary (nil: os.Environ()).
	Env []string
	// TerminationLog is where the record goes ("" writes none).
	TerminationLog string
	// QuitAfter is the grace between SIGTERM and SIGQUIT (0: no SIGQUIT).
	QuitAfter time.Duration
	// SyncTimeout bounds the synchronised start.
	SyncTimeout time.Duration
	// Drain: see DefaultDrain.
	Drain time.Duration
	// Cluster is the API server for the synchronised start (zero: in
	// cluster, see InCluster).
	Cluster Cluster
	// Stdout receives all output (nil: os.Stdout).
	Stdout io.Writer
	// Signals delivers the signals to forward (nil: none).
	Signals <-chan os.Signal
}

// Forwarded are the signals the entrypoint passes on to the test binary.
var Forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2}

// Parse reads the entrypoint's own flags (leading arguments starting with
// -testship. or --testship.) and leaves the rest as the binary's arguments.
func Parse(args []string) (Options, error) {
	o := Options{Binary: testlog.TestBinaryPath, TerminationLog: DefaultTerminationLog,
		QuitAfter: DefaultQuitAfter, SyncTimeout: DefaultSyncTimeout, Drain: DefaultDrain}
	n := 0
	for n < len(args) && (strings.HasPrefix(args[n], FlagPrefix) || strings.HasPrefix(args[n], "-"+FlagPrefix)) {
		if !strings.Contains(args[n], "=") {
			n++ // every flag takes a value: -testship.binary /x
		}
		n++
	}
	n = min(n, len(args))
	set := flag.NewFlagSet("testship-entrypoint", flag.ContinueOnError)
	set.SetOutput(io.Discard)
	set.StringVar(&o.Binary, "testship.binary", o.Binary, "the test binary to run")
	set.StringVar(&o.TerminationLog, "testship.termination-log", o.TerminationLog, "where the record is written")
	set.DurationVar(&o.QuitAfter, "testship.quit-after", o.QuitAfter, "SIGQUIT this long after SIGTERM (0: never)")
	set.DurationVar(&o.SyncTimeout, "testship.sync-timeout", o.SyncTimeout, "how long the synchronised start waits")
	if err := set.Parse(args[:n]); err != nil {
		return o, fmt.Errorf("entrypoint flags %q: %v (known: -testship.binary, -testship.termination-log, -testship.quit-after, -testship.sync-timeout)", args[:n], err)
	}
	if o.QuitAfter < 0 || o.SyncTimeout <= 0 {
		return o, fmt.Errorf("entrypoint flags %q: -testship.quit-after must be ≥ 0 and -testship.sync-timeout > 0", args[:n])
	}
	o.Args = args[n:]
	return o, nil
}

// Main is the whole program: parse, forward signals, run; it returns the
// exit code.
func Main(args []string) int {
	o, err := Parse(args)
	if err != nil {
		r := newRun(o)
		return r.fail(ExitConfig, err)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, Forwarded...)
	// A broken stdout then fails writes instead of killing the entrypoint
	// (Go's default for fd 1): the test still runs out and the record is
	// written. Only the handler is set, so the binary keeps the default.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	o.Signals = sigs
	return Supervise(context.Background(), o)
}

// run is the state of one Run.
type run struct {
	o   Options
	env []string
	out *output
}

func newRun(o Options) *run {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	return &run{o: o, env: env, out: newOutput(o.Stdout)}
}

func (r *run) getenv(k string) string {
	v := ""
	for _, kv := range r.env {
		if name, val, ok := strings.Cut(kv, "="); ok && name == k {
			v = val // the last one wins, as for exec
		}
	}
	return v
}

// Supervise runs the test binary as Options say (shard selection,
// synchronised start, signals forwarded, output counted) and returns its
// exit code after writing the termination record.
func Supervise(ctx context.Context, o Options) int {
	r := newRun(o)
	pod, err := readPod(r.getenv)
	if err != nil {
		return r.fail(ExitConfig, err)
	}
	args := o.Args
	if pod.Mode == testlog.ModeShard {
		if len(pod.Shard) == 0 {
			r.out.Linef("testship: shard %d of %d has no tests; nothing to run", pod.Index, pod.Count)
			return r.finish(testlog.Record{})
		}
		args = ShardArgs(args, pod.Shard)
	}
	if pod.Sync {
		if code, err := r.syncStart(ctx, pod); err != nil {
			return r.fail(code, err)
		}
	}
	return r.runBinary(args, pod)
}

// syncStart waits until all copies run; a forwarded SIGTERM or SIGINT
// ends the wait.
func (r *run) syncStart(ctx context.Context, pod Pod) (int, error) {
	if pod.Count <= 1 {
		return 0, nil
	}
	cl := r.o.Cluster
	if cl.Host == "" {
		var err error
		if cl, err = InCluster(r.getenv); err != nil {
			return ExitSync, err
		}
	}
	r.out.Linef("testship: waiting until all %d copies of Job %s run (synchronised start, at most %s)", pod.Count, pod.Job, r.o.SyncTimeout)
	ctx, cancel := context.WithTimeout(ctx, r.o.SyncTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cl.WaitReady(ctx, pod.Job, pod.Count) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					err = fmt.Errorf("not all %d copies of Job %s ran within %s (-testship.sync-timeout): %w", pod.Count, pod.Job, r.o.SyncTimeout, err)
				}
				return ExitSync, fmt.Errorf("synchronised start: %w", err)
			}
			r.out.Linef("testship: all %d copies running; starting", pod.Count)
			return 0, nil
		case s := <-r.o.Signals:
			if s == syscall.SIGTERM || s == syscall.SIGINT {
				cancel()
				<-done
				return 128 + int(s.(syscall.Signal)), fmt.Errorf("%s received while waiting for all copies (synchronised start); the test did not start", sigName(s))
			}
		}
	}
}

// runBinary starts the binary, copies its output and waits for it.
func (r *run) runBinary(args []string, pod Pod) int {
	pr, pw, err := os.Pipe()
	if err != nil {
		return r.fail(ExitStart, fmt.Errorf("output pipe: %w", err))
	}
	defer pr.Close()
	cmd := exec.Command(r.o.Binary, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, pw, pw
	cmd.Env = r.env
	if pod.IndexFromJob {
		cmd.Env = append(append([]string(nil), r.env...), testlog.EnvIndex+"="+fmt.Sprint(pod.Index))
	}
	if err := cmd.Start(); err != nil {
		pw.Close()
		if errors.Is(err, fs.ErrNotExist) {
			return r.fail(ExitNotFound, fmt.Errorf("test binary %s not found: %w (is this a test image? the base image alone has no test)", r.o.Binary, err))
		}
		return r.fail(ExitStart, fmt.Errorf("start test binary %s: %w", r.o.Binary, err))
	}
	pw.Close() // the binary holds the write end now

	var exitedAt atomic.Int64 // unix nanoseconds, 0 while the binary runs
	// After the exit: stop once the pipe is idle for Drain, and at the
	// latest DrainMax×Drain after the exit (a background process that
	// keeps writing).
	drainDeadline := func() time.Time {
		idle, latest := time.Now().Add(r.o.Drain), time.Unix(0, exitedAt.Load()).Add(DrainMax*r.o.Drain)
		if latest.Before(idle) {
			return latest
		}
		return idle
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 32<<10)
		for {
			n, err := pr.Read(buf)
			if n > 0 {
				r.out.Write(buf[:n])
			}
			if err != nil {
				return // EOF, or past the drain after the exit
			}
			if exitedAt.Load() != 0 {
				pr.SetReadDeadline(drainDeadline())
			}
		}
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var quit <-chan time.Time
	var werr error
loop:
	for {
		select {
		case werr = <-waited:
			break loop
		case s := <-r.o.Signals:
			cmd.Process.Signal(s)
			if s == syscall.SIGTERM && quit == nil && r.o.QuitAfter > 0 {
				r.out.Linef("testship: SIGTERM passed to the test; SIGQUIT (goroutine dump) in %s if it is still running", r.o.QuitAfter)
				quit = time.After(r.o.QuitAfter)
			}
		case <-quit:
			r.out.Linef("testship: the test is still running %s after SIGTERM; sending SIGQUIT", r.o.QuitAfter)
			cmd.Process.Signal(syscall.SIGQUIT)
		}
	}
	exitedAt.Store(time.Now().UnixNano())
	pr.SetReadDeadline(drainDeadline())
	<-copied

	rec := testlog.Record{}
	var ee *exec.ExitError
	switch {
	case werr == nil:
	case errors.As(werr, &ee):
		rec.Exit = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			rec.Exit = 128 + int(ws.Signal())
			rec.Signal = sigName(ws.Signal())
		}
	default:
		rec.Exit, rec.Error = ExitStart, fmt.Sprintf("wait for the test binary: %v", werr)
	}
	return r.finish(rec)
}

// fail reports the entrypoint's own failure: one line in the log, and a
// record with Error set.
func (r *run) fail(code int, err error) int {
	r.out.Linef("testship: error: %v", err)
	return r.finish(testlog.Record{Exit: code, Error: err.Error()})
}

// finish completes rec from the output and writes it to the termination
// log; it returns rec.Exit.
func (r *run) finish(rec testlog.Record) int {
	r.out.Fill(&rec)
	if r.o.TerminationLog != "" {
		if err := os.WriteFile(r.o.TerminationLog, rec.Encode(), 0o644); err != nil {
			// Not on stdout: the record describes stdout, and is lost anyway.
			fmt.Fprintf(os.Stderr, "testship: cannot write the termination record to %s: %v\n", r.o.TerminationLog, err)
		}
	}
	return rec.Exit
}

var sigNames = map[syscall.Signal]string{
	syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT", syscall.SIGILL: "SIGILL",
	syscall.SIGTRAP: "SIGTRAP", syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE",
	syscall.SIGKILL: "SIGKILL", syscall.SIGUSR1: "SIGUSR1", syscall.SIGSEGV: "SIGSEGV", syscall.SIGUSR2: "SIGUSR2",
	syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM", syscall.SIGXCPU: "SIGXCPU",
}

func sigName(s os.Signal) string {
	if n, ok := sigNames[s.(syscall.Signal)]; ok {
		return n
	}
	return fmt.Sprintf("signal %d", int(s.(syscall.Signal)))
}
