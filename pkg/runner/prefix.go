package runner

import (
	"fmt"
	"strconv"
)

// IndexPrefix is the prefix of pod i's output lines in a run of n pods:
// the index in brackets, right-aligned to the width of n-1, and a space
// ("[3] " for n ≤ 10, "[ 3] " for n ≤ 100), so that the lines of all pods
// line up.
func IndexPrefix(i, n int) string {
	w := len(strconv.Itoa(max(n-1, 0)))
	return fmt.Sprintf("[%*d] ", w, i)
}
