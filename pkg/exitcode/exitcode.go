// Package exitcode holds testship's process exit codes in one place.
//
// A run that reached its end exits with the test binary's own code: 0
// passed, 1 a test failed, 2 a panic (or a build/flag error), or whatever
// TestMain passed to os.Exit. When the test could not run to its end,
// testship exits with one of these instead, each with its reason named.
package exitcode

const (
	ImagePull       = 81 // the test image cannot be pulled
	Unschedulable   = 82 // no node can take the pod
	ContainerConfig = 83 // the container cannot be created (e.g. a missing Secret)
	OOMKilled       = 84 // the test went past its memory limit
	PodLost         = 85 // the pod was deleted or evicted while the test ran
	Deadline        = 86 // the Job's activeDeadlineSeconds passed
	WaitTimeout     = 87 // the local wait timed out; the run goes on
	Cancelled       = 88 // the run was cancelled (Ctrl-C or run:cancel)
	Infra           = 89 // testship could not do its part (configuration included)
)
