package syncio

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// Lines written from many goroutines at once arrive whole (run with -race
// to see the lock matter).
func TestConcurrentLinesStayWhole(t *testing.T) {
	var under bytes.Buffer
	var buf Buffer
	w := NewWriter(&under)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			line := strings.Repeat(string(rune('a'+i)), 64) + "\n"
			for range 100 {
				w.Write([]byte(line))
				buf.Write([]byte(line))
				_ = buf.String()
			}
		}()
	}
	wg.Wait()
	for name, out := range map[string]string{"Writer": under.String(), "Buffer": buf.String()} {
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 800 {
			t.Fatalf("%s: %d lines, want 800", name, len(lines))
		}
		for _, l := range lines {
			if len(l) != 64 || strings.Count(l, l[:1]) != 64 {
				t.Fatalf("%s: interleaved line %q", name, l)
			}
		}
	}
}
