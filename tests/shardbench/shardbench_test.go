//go:build shardbench

// Fixture of the sharding benchmarks (`mage bench`): tests that only sleep,
// so that a run's wall time is its placement. It has its own build tag so
// that no ordinary `go test ./...` spends minutes in it.
//
//   - TestEven*: 8 tests of 10 s each (serial 80 s; 4 shards: 20 s at best);
//   - TestUneven*: 40 s, 4 × 10 s and 4 × 5 s (serial 100 s; 4 shards: 40 s
//     at best, reached only when the 40 s test is placed first and alone).
package shardbench

import (
	"fmt"
	"testing"
	"time"
)

func sleep(t *testing.T, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	fmt.Printf("slept %s\n", d)
}

func TestEven1(t *testing.T) { sleep(t, 10*time.Second) }
func TestEven2(t *testing.T) { sleep(t, 10*time.Second) }
func TestEven3(t *testing.T) { sleep(t, 10*time.Second) }
func TestEven4(t *testing.T) { sleep(t, 10*time.Second) }
func TestEven5(t *testing.T) { sleep(t, 10*time.Second) }
func TestEven6(t *testing.T) { sleep(t, 10*time.Second) }
func TestEven7(t *testing.T) { sleep(t, 10*time.Second) }
func TestEven8(t *testing.T) { sleep(t, 10*time.Second) }

func TestUnevenLong(t *testing.T)   { sleep(t, 40*time.Second) }
func TestUnevenMid1(t *testing.T)   { sleep(t, 10*time.Second) }
func TestUnevenMid2(t *testing.T)   { sleep(t, 10*time.Second) }
func TestUnevenMid3(t *testing.T)   { sleep(t, 10*time.Second) }
func TestUnevenMid4(t *testing.T)   { sleep(t, 10*time.Second) }
func TestUnevenShort1(t *testing.T) { sleep(t, 5*time.Second) }
func TestUnevenShort2(t *testing.T) { sleep(t, 5*time.Second) }
func TestUnevenShort3(t *testing.T) { sleep(t, 5*time.Second) }
func TestUnevenShort4(t *testing.T) { sleep(t, 5*time.Second) }

// TestNothing is a run's fixed cost: one pod started, nothing to wait for.
func TestNothing(t *testing.T) {}
