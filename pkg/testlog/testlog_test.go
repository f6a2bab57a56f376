package testlog

import (
	"strings"
	"testing"
	"time"
)

func TestCounterAndVerify(t *testing.T) {
	pod, got := NewCounter(), NewCounter()
	out := []string{"=== RUN   TestA\n", "--- PASS: TestA (0.00s)\n", "PASS\n", "tail without newline"}
	for _, l := range out {
		pod.Write([]byte(l))
	}
	if pod.Lines() != 4 || pod.Bytes() != int64(len(strings.Join(out, ""))) {
		t.Fatalf("lines %d bytes %d", pod.Lines(), pod.Bytes())
	}
	rec := Record{Lines: pod.Lines(), Bytes: pod.Bytes(), SHA256: pod.Sum()}
	// The same bytes in other chunks match.
	got.Write([]byte(strings.Join(out, "")))
	if d := rec.Verify(got); d != "" {
		t.Fatalf("same output does not verify: %s", d)
	}
	lost := NewCounter()
	lost.Write([]byte(out[0] + out[1]))
	if d := rec.Verify(lost); !strings.Contains(d, "2 of 4 lines lost") {
		t.Fatalf("loss not reported exactly: %q", d)
	}
	changed := NewCounter()
	changed.Write([]byte(strings.Replace(strings.Join(out, ""), "TestA", "TestB", 1)))
	if d := rec.Verify(changed); !strings.Contains(d, "digest differs") {
		t.Fatalf("changed content not reported: %q", d)
	}
}

func TestRecordEncodeParse(t *testing.T) {
	var failed []string
	for i := 0; i < 500; i++ {
		failed = append(failed, "TestSomethingRatherLongName_"+strings.Repeat("x", 10))
	}
	b := Record{Exit: 1, Lines: 10, Bytes: 100, SHA256: "ab", Fail: 500, Failed: failed}.Encode()
	if len(b) > MaxRecord {
		t.Fatalf("record is %d bytes, over %d", len(b), MaxRecord)
	}
	rec, ok := ParseRecord(string(b) + "\n")
	if !ok || rec.Exit != 1 || !rec.Truncated || len(rec.Failed) == 0 || len(rec.Failed) == 500 || rec.Fail != 500 {
		t.Fatalf("parse: ok=%v %+v", ok, rec)
	}
	for _, bad := range []string{"", "container exited", `{"v":99,"sha256":"x"}`, `{"v":1}`, "{"} {
		if _, ok := ParseRecord(bad); ok {
			t.Errorf("ParseRecord(%q) accepted", bad)
		}
	}
}

func TestSummary(t *testing.T) {
	var s Summary
	for _, l := range []string{"=== RUN TestA", "--- PASS: TestA (0.01s)", "    --- FAIL: TestB/sub (0.00s)", "--- FAIL: TestB (0.00s)", "--- SKIP: TestC (0.00s)", "FAIL"} {
		s.Observe([]byte(l + "\n"))
	}
	if len(s.Passed) != 1 || len(s.Failed) != 2 || len(s.Skipped) != 1 || s.Final != "FAIL" {
		t.Fatalf("%+v", s)
	}
	if f := s.FailedTop(); len(f) != 1 || f[0] != "TestB/sub" {
		t.Fatalf("FailedTop %v", f)
	}
}

func TestSummaryAdd(t *testing.T) {
	var a, b, all Summary
	for _, l := range []string{"--- PASS: TestA (1.50s)", "PASS"} {
		a.Observe([]byte(l + "\n"))
	}
	for _, l := range []string{"--- FAIL: TestB (2.00s)", "FAIL"} {
		b.Observe([]byte(l + "\n"))
	}
	all.Add(a)
	all.Add(b)
	if len(all.Passed) != 1 || len(all.Failed) != 1 || all.Final != "FAIL" || all.Durations["TestA"] != 1500*time.Millisecond || all.Durations["TestB"] != 2*time.Second {
		t.Fatalf("%+v", all)
	}
}
