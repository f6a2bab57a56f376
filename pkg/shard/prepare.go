package shard

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/testship/testship/pkg/config"
)

// Split is a sharded run's plan and what to tell the user about it.
type Split struct {
	// Plan is each shard's top-level tests (TESTSHIP_SHARD_PLAN as JSON).
	Plan [][]string
	// Loads is each shard's expected duration (zeros without history).
	Loads []time.Duration
	// Notes are for the run's output: how many shards auto chose, fewer
	// shards than asked, a damaged durations file, how the plan balances.
	Notes []string
}

// Prepare lists the tests of binary that pattern (TESTSHIP_RUN) selects
// and splits them over pods.Shards shards, or as many as Auto chooses with
// pods.Auto, balanced by the durations recorded under key in the state
// directory stateDir. Errors are List's: a pattern selecting nothing is a
// *config.Error naming TESTSHIP_RUN; a damaged durations file is only a
// note.
func Prepare(ctx context.Context, binary, pattern string, pods config.Pods, stateDir, key string) (*Split, error) {
	tests, err := List(ctx, binary, pattern)
	if err != nil {
		return nil, err
	}
	s := &Split{}
	durations, err := LoadDurations(stateDir, key)
	if err != nil {
		s.Notes = append(s.Notes, err.Error()+"; splitting by name")
	}
	n := pods.Shards
	if pods.Auto {
		var why string
		n, why = Auto(tests, durations, pods.Max)
		s.Notes = append(s.Notes, why)
	}
	s.Plan = Plan(tests, n, durations)
	s.Loads = Loads(s.Plan, durations)
	if note := Note(n, s.Plan); note != "" {
		s.Notes = append(s.Notes, note)
	}
	s.Notes = append(s.Notes, s.describe(len(tests), len(known(tests, durations))))
	return s, nil
}

// describe says how the plan was made and how it balances.
func (s *Split) describe(tests, recorded int) string {
	if recorded == 0 {
		return fmt.Sprintf("%d tests over %d shards, split by name (no recorded durations yet)", tests, len(s.Plan))
	}
	loads := make([]string, len(s.Loads))
	for i, l := range s.Loads {
		loads[i] = l.Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("%d tests over %d shards, balanced by the durations of %d of them: about %s", tests, len(s.Plan), recorded, strings.Join(loads, ", "))
}
