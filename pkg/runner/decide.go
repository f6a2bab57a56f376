package runner

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/testship/testship/pkg/testlog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The waiting side of a run is three parts: the pod watcher (watch.go)
// publishes what it sees of the run's pods, one log follower per pod
// (logs.go) streams that pod's output, and decide, here, reads the pods'
// states and the Job's facts and says what to do next. decide does no I/O:
// it is table-tested without a cluster.

// podView is one pod of the run as the watcher last saw it.
type podView struct {
	Pod     *corev1.Pod
	Deleted bool // the watch saw it deleted
	Index   int  // its completion index (0 in a single-pod run)
}

// jobFacts is what the wait knows of the run's Job.
type jobFacts struct {
	// Count is the number of pods (completion indexes) of the run.
	Count int
	// Indexed is true for an Indexed Job (a multi-pod run's output is
	// prefixed with the index, its messages name the index).
	Indexed bool
	// Checked is true once the Job was read after a pod went away;
	// DeadlinePassed and ActiveDeadline are only meaningful then.
	Checked        bool
	DeadlinePassed bool
	ActiveDeadline int64
}

// multi says whether the run is reported as several pods.
func (j jobFacts) multi() bool { return j.Indexed && j.Count > 1 }

// runView is the input of decide.
type runView struct {
	Pods     []podView // in the order the watch first saw them
	Job      jobFacts
	Now      time.Time
	Grace    time.Duration // UnschedulableGrace
	Detach   bool
	FailFast bool
}

// verdict is what the wait does next.
type verdict int

const (
	keepWaiting verdict = iota
	detachNow           // every pod's test started: return, the run goes on
	finishNow           // the run (or, with FailFast, its first failure) ended
)

func (v verdict) String() string {
	return [...]string{"keep waiting", "detach", "finish"}[v]
}

// indexState is one completion index as decide sees it: the pod that
// stands for it and what classify made of that pod.
type indexState struct {
	Index    int
	Pod      string
	UID      types.UID
	Seen     bool // a pod exists for the index
	Started  bool
	Ended    bool // the test ended (Done) or cannot run (Reason set)
	Done     bool // the container terminated: ExitCode is the test's
	ExitCode int  // the record's exit code when there is one, else the container's
	Lost     bool // the pod is gone or going
	Deleting bool // the pod has a deletion timestamp
	// Code, Reason and Message name a fault (81–86).
	Code            int
	Reason, Message string
	// Record is the entrypoint's record from the termination message.
	Record *testlog.Record
	// Replaced names pods that came after the one standing for the index.
	Replaced []string
}

// failed reports whether the index ended other than passed.
func (s indexState) failed() bool { return s.Ended && (s.Reason != "" || s.ExitCode != 0) }

// decision is decide's answer.
type decision struct {
	Verdict verdict
	// Follow lists the pods whose output is to be followed now.
	Follow []types.UID
	// Indexes is every index's state, 0..Count-1.
	Indexes []indexState
	// Code, Reason and Message are the run's outcome (with finishNow).
	Code            int
	Reason, Message string
	// WakeAt is when a pending condition (unschedulable) turns into a
	// fault unless something changes first; zero when none.
	WakeAt time.Time
	// NeedJob asks for the Job's facts (Checked) before the outcome is
	// final: a pod went away, maybe for the Job's deadline.
	NeedJob bool
}

// PodIndex reads a pod's completion index (annotation, or label, of an
// Indexed Job); ok is false when it has none or it is not a number.
func PodIndex(pod *corev1.Pod) (int, bool) {
	v, ok := pod.Annotations[batchCompletionIndex]
	if !ok {
		v, ok = pod.Labels[batchCompletionIndex]
	}
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return 0, false
	}
	return i, true
}

// batchCompletionIndex is the annotation (and label) the Job controller
// puts on an Indexed Job's pods.
const batchCompletionIndex = "batch.kubernetes.io/job-completion-index"

// decide says what the wait does next. Each index is stood for by the
// first pod seen with it (a pod replacing one that was deleted is named,
// not followed: with backoffLimitPerIndex 0 the index has failed already).
// The run ends when every index has ended; with FailFast at the first
// index that failed; with Detach once every index's test has started, or
// at the first fault.
func decide(v runView) decision {
	n := max(v.Job.Count, 1)
	d := decision{Indexes: make([]indexState, n)}
	for i := range d.Indexes {
		d.Indexes[i].Index = i
	}
	views := make([]*podView, n)
	for i := range v.Pods {
		p := &v.Pods[i]
		if p.Index < 0 || p.Index >= n {
			continue
		}
		if views[p.Index] == nil {
			views[p.Index] = p
		} else {
			d.Indexes[p.Index].Replaced = append(d.Indexes[p.Index].Replaced, p.Pod.Name)
		}
	}
	allStarted, allEnded, anyFault, anyFailed := true, true, false, false
	for i, p := range views {
		s := &d.Indexes[i]
		if p == nil {
			allStarted, allEnded = false, false
			continue
		}
		f := classify(p.Pod, p.Deleted, v.Now, v.Grace)
		s.Seen, s.Pod, s.UID = true, p.Pod.Name, p.Pod.UID
		s.Started, s.Done, s.ExitCode, s.Lost = f.started, f.done, f.exitCode, f.lost
		s.Deleting = p.Pod.DeletionTimestamp != nil
		s.Code, s.Reason, s.Message = f.code, f.reason, f.message
		if f.done {
			if rec, ok := podRecord(p.Pod); ok {
				s.Record = &rec
				if f.reason == "" {
					s.ExitCode = rec.Exit
				}
			}
		}
		s.Ended = f.done || f.reason != ""
		if !f.waitUntil.IsZero() && f.waitUntil.After(v.Now) && (d.WakeAt.IsZero() || f.waitUntil.Before(d.WakeAt)) {
			d.WakeAt = f.waitUntil
		}
		if !s.Started && !s.Ended {
			allStarted = false
		}
		if !s.Ended {
			allEnded = false
		}
		anyFault = anyFault || s.Reason != ""
		anyFailed = anyFailed || s.failed()
	}
	// Logs are followed from the moment a test starts, except when the
	// caller detaches: then only when everything has ended already.
	if !v.Detach || allEnded {
		for _, s := range d.Indexes {
			if s.Started {
				d.Follow = append(d.Follow, s.UID)
			}
		}
	}
	switch {
	case allEnded, v.FailFast && anyFailed, v.Detach && anyFault:
		d.Verdict = finishNow
	case v.Detach && allStarted:
		d.Verdict = detachNow
		return d
	default:
		return d
	}
	for _, s := range d.Indexes {
		if s.Ended && (s.Lost || (s.Done && s.Deleting && s.ExitCode != 0)) {
			d.NeedJob = !v.Job.Checked
		}
	}
	d.Code, d.Reason, d.Message = outcome(d.Indexes, v.Job)
	return d
}

// podRecord reads the entrypoint's record from the test container's
// termination message.
func podRecord(pod *corev1.Pod) (testlog.Record, bool) {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == ContainerName && cs.State.Terminated != nil {
			return testlog.ParseRecord(cs.State.Terminated.Message)
		}
	}
	return testlog.Record{}, false
}

// outcome makes one exit code of the ended indexes: the Job's deadline
// when it passed and a pod went away; else a fault (81–86) when any index
// hit one (the lowest index's; the message names every faulted pod); else
// the highest test exit code; 0 when all passed.
func outcome(idx []indexState, job jobFacts) (code int, reason, message string) {
	multi := job.multi()
	var faults []indexState
	for i := range idx {
		s := &idx[i]
		if !s.Ended {
			continue
		}
		if s.Lost || (s.Done && s.Deleting && s.ExitCode != 0) {
			if job.Checked && job.DeadlinePassed {
				return ExitDeadline, ReasonDeadline, fmt.Sprintf("the Job's deadline (activeDeadlineSeconds %d) passed before the test ended: raise TESTSHIP_TIMEOUT", job.ActiveDeadline)
			}
			if s.Reason == "" {
				s.Code, s.Reason, s.Message = ExitPodLost, ReasonPodDeleted, fmt.Sprintf("pod %s was deleted while the test ran (container exit code %d)", s.Pod, s.ExitCode)
			}
		}
		if s.Reason != "" {
			faults = append(faults, *s)
		}
	}
	if len(faults) > 0 {
		if !multi {
			return faults[0].Code, faults[0].Reason, faults[0].Message
		}
		var msgs []string
		for _, f := range faults {
			m := fmt.Sprintf("index %d (pod %s): %s", f.Index, f.Pod, f.Message)
			if len(f.Replaced) > 0 {
				m += fmt.Sprintf(" (replaced by %s, not followed)", strings.Join(f.Replaced, ", "))
			}
			msgs = append(msgs, m)
		}
		return faults[0].Code, faults[0].Reason, strings.Join(msgs, "; ")
	}
	for _, s := range idx {
		if s.Ended && s.ExitCode > code {
			code = s.ExitCode
		}
	}
	return code, "", ""
}
