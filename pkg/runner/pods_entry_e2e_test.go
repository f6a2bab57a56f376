//go:build e2e

package runner_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/imagestate"
	"github.com/testship/testship/pkg/runner"
	"github.com/testship/testship/pkg/testlog"
)

// Through testship's entrypoint (the Job's default command): each shard
// runs exactly its tests of the plan and leaves a record of its output as
// the termination message; a synchronised start of copies gets through
// (the entrypoint may watch its own Job with the run's Role, in a
// namespace enforcing the restricted standard).
func TestPodsThroughEntrypoint(t *testing.T) {
	c := newPodsCluster(t)
	ctx := context.Background()
	image := podsImage(t) // testimage adds the entrypoint to test images

	o := c.podsOptions(t, 3, testlog.ModeShard, "", nil)
	o.Image, o.Command = image, nil
	o.ShardPlan = [][]string{{"TestA", "TestIndex"}, {"TestB"}, {"TestC"}}
	run, err := runner.Launch(ctx, c.cs, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, end := jobEnd(t, c, run.ID)
	var logs bytes.Buffer
	if err := runner.Logs(ctx, c.cs, c.ns, run.ID, &logs); err != nil {
		t.Fatal(err)
	}
	if end.Type != batchv1.JobComplete {
		t.Fatalf("shard run ended %s %s: %s\n%s", end.Type, end.Reason, end.Message, logs.String())
	}
	for _, want := range []string{"[0] pods: A in 0\n", "[0] pods: index=0 count=3 mode=shard", "[1] pods: B in 1\n", "[2] pods: C in 2\n"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("run:logs lacks %q:\n%s", want, logs.String())
		}
	}
	for _, not := range []string{"[1] pods: A", "[2] pods: A", "[0] pods: B", "[2] pods: B", "[0] pods: C", "[1] pods: C", "[1] pods: index=", "[2] pods: index="} {
		if strings.Contains(logs.String(), not) {
			t.Errorf("a test ran outside its shard (%q):\n%s", not, logs.String())
		}
	}
	for i, p := range runPods(t, c, run.ID, 3) {
		var msg string
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Terminated != nil {
				msg = s.State.Terminated.Message
			}
		}
		rec, ok := testlog.ParseRecord(msg)
		want := 1
		if i == 0 {
			want = 2
		}
		if !ok || rec.Exit != 0 || rec.Pass != want || rec.Lines == 0 {
			t.Errorf("index %d: termination message %q (parsed %t), want a record of %d passed", i, msg, ok, want)
		}
	}

	o = c.podsOptions(t, 3, testlog.ModeCopy, "^TestIndex$", nil)
	o.Image, o.Command, o.SyncStart = image, nil, true
	run, err = runner.Launch(ctx, c.cs, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, end = jobEnd(t, c, run.ID)
	logs.Reset()
	if err := runner.Logs(ctx, c.cs, c.ns, run.ID, &logs); err != nil {
		t.Fatal(err)
	}
	if end.Type != batchv1.JobComplete {
		t.Fatalf("synchronised copies ended %s %s: %s\n%s", end.Type, end.Reason, end.Message, logs.String())
	}
	for _, want := range []string{"[0] pods: index=0 count=3 mode=copy", "[1] pods: index=1 count=3 mode=copy", "[2] pods: index=2 count=3 mode=copy", "sync=true"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("run:logs lacks %q:\n%s", want, logs.String())
		}
	}
	t.Logf("synchronised copies:\n%s", logs.String())
}

// The test image image:push made (on the base image with the entrypoint,
// as the image pipeline builds it), as synchronised copies: every pod's
// entrypoint holds the start until all 3 run, and leaves its record.
// Needs `go run magefile.go image:push` first (the images in
// TESTSHIP_STATE_DIR).
func TestPodsPushedTestImage(t *testing.T) {
	st, err := imagestate.Load(config.Get(config.StateDir))
	if err != nil || !st.Pushed || st.Test.Digest == "" {
		t.Fatalf("no pushed test image (%v): run `go run magefile.go image:push` first", err)
	}
	c := newPodsCluster(t)
	ctx := context.Background()
	o := c.podsOptions(t, 3, testlog.ModeCopy, "^TestNothingMatchesThis$", nil)
	o.Image, o.Command, o.SyncStart, o.Test = st.Test.Pinned(), nil, true, "pushed"
	run, err := runner.Launch(ctx, c.cs, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, end := jobEnd(t, c, run.ID)
	var logs bytes.Buffer
	if err := runner.Logs(ctx, c.cs, c.ns, run.ID, &logs); err != nil {
		t.Fatal(err)
	}
	if end.Type != batchv1.JobComplete {
		t.Fatalf("run of %s ended %s %s: %s\n%s", o.Image, end.Type, end.Reason, end.Message, logs.String())
	}
	for i, p := range runPods(t, c, run.ID, 3) {
		if want := fmt.Sprintf("[%d] testship: all 3 copies running; starting\n", i); !strings.Contains(logs.String(), want) {
			t.Errorf("run:logs lacks %q:\n%s", want, logs.String())
		}
		var msg string
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Terminated != nil {
				msg = s.State.Terminated.Message
			}
		}
		if rec, ok := testlog.ParseRecord(msg); !ok || rec.Exit != 0 || rec.Lines == 0 {
			t.Errorf("index %d: termination message %q, want the entrypoint's record of a pass", i, msg)
		}
	}
}
