package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// roundLen is how many cycles of one kind run back to back before the
// next kind takes over, when several kinds are measured together.
const roundLen = 10

// closers undo a setup.
type closers []func() error

func (cs *closers) add(f func())          { *cs = append(*cs, func() error { f(); return nil }) }
func (cs *closers) addErr(f func() error) { *cs = append(*cs, f) }

// close runs the closers, the last added first, and joins their errors.
func (cs closers) close() error {
	var err error
	for i := len(cs) - 1; i >= 0; i-- {
		err = errors.Join(err, cs[i]())
	}
	return err
}

// cycler is one kind of cycle, set up and ready to run: a lock+unlock of
// one client, say. cnt counts its client's requests.
type cycler struct {
	closers
	cnt   *counter
	cycle func() error
}

// measure sets up the cyclers that mk make, runs n cycles of each,
// interleaved (see runRounds), and closes them.
func measure(ctx context.Context, n int, mk ...func() (*cycler, error)) (_ []cycleResult, err error) {
	cs := make([]*cycler, 0, len(mk))
	defer func() {
		for _, c := range cs {
			err = errors.Join(err, c.close())
		}
	}()
	for _, f := range mk {
		c, err := f()
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return runRounds(ctx, n, cs)
}

// runRounds runs warm-up cycles of each cycler, then n measured cycles of
// each, in rounds: roundLen cycles of one, then roundLen of the next, in
// the orders of balancedOrder. The agent's pace drifts by tens of
// percent over a run; kinds measured in blocks of their own, one after
// the other, each got a different share of that drift, and their ratio
// moved with it. Interleaved, they share it.
//
// The requests of each cycler's client are counted from the first measured
// cycle until settleTime after the last, so that what the cycles leave
// running (the official client's session destroy and lock monitor) counts.
func runRounds(ctx context.Context, n int, cs []*cycler) ([]cycleResult, error) {
	for _, c := range cs {
		for range warmup {
			if err := c.cycle(); err != nil {
				return nil, err
			}
		}
	}
	if err := pause(ctx, settleTime); err != nil {
		return nil, err
	}
	before := make([]snapshot, len(cs))
	lats := make([]sample, len(cs))
	for i, c := range cs {
		before[i] = c.cnt.snap()
		lats[i] = make(sample, 0, n)
	}
	runs := make([]int, len(cs)) // cycles run in the counting window, lead cycles included
	lead := map[[2]int]sample{}  // lead cycles' latencies by (previous kind, kind), for -v
	prev := -1
	for round := 0; len(lats[0]) < n; round++ {
		for _, i := range balancedOrder(len(cs), round) {
			// A lead cycle, not timed: what the previous block left
			// running (the official client's background session destroy
			// and lock monitor; consulkit leaves nothing) would otherwise
			// fall on this block's first timed cycle, so that only the
			// kinds that follow an official block paid for it.
			t0 := time.Now()
			if err := cs[i].cycle(); err != nil {
				return nil, err
			}
			if prev >= 0 {
				lead[[2]int{prev, i}] = append(lead[[2]int{prev, i}], time.Since(t0))
			}
			prev = i
			runs[i]++
			for k := 0; k < roundLen && len(lats[i]) < n; k++ {
				t0 := time.Now()
				if err := cs[i].cycle(); err != nil {
					return nil, err
				}
				lats[i] = append(lats[i], time.Since(t0))
				runs[i]++
			}
		}
	}
	if err := pause(ctx, settleTime); err != nil {
		return nil, err
	}
	out := make([]cycleResult, len(cs))
	for i, c := range cs {
		reqs, dials, breakdown := c.cnt.since(before[i])
		var leads []string
		for j := range cs {
			if l := lead[[2]int{j, i}]; len(l) > 0 {
				leads = append(leads, fmt.Sprintf("after kind %d: %s", j, ms(l.median())))
			}
		}
		out[i] = cycleResult{lat: lats[i], requests: float64(reqs) / float64(runs[i]), dials: float64(dials) / float64(runs[i]), breakdown: breakdown, n: runs[i], leads: strings.Join(leads, ", ")}
	}
	return out, nil
}

// balancedOrder is the order of k kinds in round r: the rows of a
// Williams Latin square, so that over k rounds (2k when k is odd) each
// kind comes first, and follows each other kind, equally often. The first
// cycle of a block runs slower, and how much depends on what ran before
// it; a plain rotation has kind i follow kind i-1 in most rounds.
func balancedOrder(k, r int) []int {
	first := make([]int, k) // 0, 1, k-1, 2, k-2, ...
	lo, hi := 1, k-1
	for j := 1; j < k; j++ {
		if j%2 == 1 {
			first[j], lo = lo, lo+1
		} else {
			first[j], hi = hi, hi-1
		}
	}
	row := r % k
	out := make([]int, k)
	for j, v := range first {
		out[j] = (v + row) % k
	}
	if k%2 == 1 && (r/k)%2 == 1 {
		slices.Reverse(out)
	}
	return out
}
