// Package stuck is a test that outlives SIGTERM: it catches the signal (as
// a test cleaning up would) and stays blocked, so the entrypoint's SIGQUIT
// after its grace makes Go print where it is stuck. Under testdata so
// `go test ./...` never runs it; the entrypoint's e2e test builds it.
package stuck

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

func TestStuck(t *testing.T) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM)
	go func() {
		<-c
		fmt.Println("stuck: SIGTERM caught, still busy")
	}()
	fmt.Println("stuck: running")
	stuckInCleanup()
}

func stuckInCleanup() { time.Sleep(time.Hour) }
