package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
)

// results are all the measurements of a run.
type results struct {
	ckFresh, ofFresh cycleResult
	ckReuse, ofReuse cycleResult
	ckHeldCycle      cycleResult
	ofHeldCycle      cycleResult
	ckRaw, ofRaw     cycleResult // two raw KV writes back to back
	ckHand, ofHand   handoffResult
	ckHeld, ofHeld   heldResult
	ckSem, ofSem     cycleResult
	ckSemHeld        cycleResult
	ofSemHeld        cycleResult
	failover         failoverResult
}

const officialVersion = "v1.34.5"

func (r *results) print(w io.Writer, e *env, notes []string, verbose bool) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	row := func(cells ...string) { p("| %s |\n", strings.Join(cells, " | ")) }
	half := func(ck, of float64) string { return yesNo(ck <= of/2) }
	f2 := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	medRatio := func(a, b sample) string { return ratio(float64(a.median()), float64(b.median())) }

	p("## consulkit lock vs the official Go client (hashicorp/consul/api %s)\n\n", officialVersion)
	p("Consul %s dev agent (%s mode), %s %s/%s, GOMAXPROCS=%d; %d cycles, %d handoffs, %d held locks per measurement.\n\n",
		e.version, e.mode, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), e.cycles, e.handoffs, e.held)

	row("Measurement", "consulkit", "official client", "consulkit ÷ official", "Target", "Met")
	row("---", "---:", "---:", "---:", "---", "---")
	for _, c := range []struct {
		name   string
		ck, of cycleResult
	}{
		{"fresh session per cycle", r.ckFresh, r.ofFresh},
		{"reused session", r.ckReuse, r.ofReuse},
	} {
		row("Lock+unlock, "+c.name+": latency median / p99", c.ck.lat.medP99(), c.of.lat.medP99(),
			medRatio(c.ck.lat, c.of.lat), "consulkit ≤ ½ official (median)", half(float64(c.ck.lat.median()), float64(c.of.lat.median())))
		row("Lock+unlock, "+c.name+": HTTP requests per cycle", f2(c.ck.requests), f2(c.of.requests),
			ratio(c.ck.requests, c.of.requests), "consulkit ≤ ½ official", half(c.ck.requests, c.of.requests))
		row("Lock+unlock, "+c.name+": TCP connections opened per cycle", f2(c.ck.dials), f2(c.of.dials), "", "", "")
	}
	row("Floor: two raw KV writes back to back ÷ official reused-session cycle (medians)",
		ratio(float64(r.ckRaw.lat.median()), float64(r.ofReuse.lat.median())), "", "",
		"≤ 0.5× for ½ official to be reachable by any client that writes twice per cycle", "")
	hc := fmt.Sprintf("Lock, hold %v, unlock, reused session", heldCycle)
	row(hc+": HTTP requests per cycle", f2(r.ckHeldCycle.requests), f2(r.ofHeldCycle.requests),
		ratio(r.ckHeldCycle.requests, r.ofHeldCycle.requests), "consulkit ≤ ½ official", half(r.ckHeldCycle.requests, r.ofHeldCycle.requests))
	row(hc+": TCP connections opened per cycle", f2(r.ckHeldCycle.dials), f2(r.ofHeldCycle.dials), "", "", "")
	row("Handoff, A.Unlock called → B.Lock returns: median / p99", r.ckHand.lat.medP99(), r.ofHand.lat.medP99(),
		medRatio(r.ckHand.lat, r.ofHand.lat), "", "")
	row("Baseline: two sequential raw KV writes, back to back: median / p99", r.ckRaw.lat.medP99(), r.ofRaw.lat.medP99(), "", "", "")
	row(fmt.Sprintf("Baseline: two sequential raw KV writes, each pair after %v idle, between the handoffs: median / p99", parkSettle),
		r.ckHand.rawIdle.medP99(), r.ofHand.rawIdle.medP99(), "", "", "")
	row(fmt.Sprintf("Diagnostic: two raw KV writes after %v idle (the idle time the baseline had before): median / p99", handoffSettle+parkSettle),
		r.ckHand.rawLong.medP99(), r.ofHand.rawLong.medP99(), "", "", "")
	row(fmt.Sprintf("Diagnostic: handoff ÷ two raw KV writes after %v idle (medians, same client)", handoffSettle+parkSettle),
		ratio(float64(r.ckHand.lat.median()), float64(r.ckHand.rawLong.median())),
		ratio(float64(r.ofHand.lat.median()), float64(r.ofHand.rawLong.median())), "", "", "")
	ckHR := float64(r.ckHand.lat.median()) / float64(r.ckHand.rawIdle.median())
	row(fmt.Sprintf("Handoff ÷ two raw KV writes after %v idle (medians, same client)", parkSettle), fmt.Sprintf("%.2f×", ckHR),
		ratio(float64(r.ofHand.lat.median()), float64(r.ofHand.rawIdle.median())), "", "consulkit ≤ 1.5×", yesNo(ckHR <= 1.5))
	row("Handoff ÷ two raw KV writes back to back (medians, same client)",
		ratio(float64(r.ckHand.lat.median()), float64(r.ckRaw.lat.median())),
		ratio(float64(r.ofHand.lat.median()), float64(r.ofRaw.lat.median())), "", "", "")
	row("HTTP requests per handoff (both contenders)", f2(r.ckHand.requests), f2(r.ofHand.requests),
		ratio(r.ckHand.requests, r.ofHand.requests), "", "")
	row("TCP connections opened per handoff (both contenders)", f2(r.ckHand.dials), f2(r.ofHand.dials), "", "", "")
	heldName := fmt.Sprintf("%d locks held over one shared session", e.held)
	row(heldName+": goroutines per lock", f2(r.ckHeld.goroutines), f2(r.ofHeld.goroutines),
		ratio(r.ckHeld.goroutines, r.ofHeld.goroutines), "", "")
	row(heldName+": heap per lock", bytesFmt(r.ckHeld.heap), bytesFmt(r.ofHeld.heap),
		ratio(r.ckHeld.heap, r.ofHeld.heap), "", "")
	row(heldName+": goroutine stack per lock", bytesFmt(r.ckHeld.stack), bytesFmt(r.ofHeld.stack),
		ratio(r.ckHeld.stack, r.ofHeld.stack), "", "")
	row(heldName+": TCP connections opened per lock while taking them", f2(r.ckHeld.conns), f2(r.ofHeld.conns), "", "", "")
	sn := fmt.Sprintf("Semaphore (limit %d) acquire+release, reused session", semLimit)
	row(sn+": latency median / p99", r.ckSem.lat.medP99(), r.ofSem.lat.medP99(), medRatio(r.ckSem.lat, r.ofSem.lat),
		"consulkit ≤ ½ official (median)", half(float64(r.ckSem.lat.median()), float64(r.ofSem.lat.median())))
	row(sn+": HTTP requests per cycle", f2(r.ckSem.requests), f2(r.ofSem.requests), ratio(r.ckSem.requests, r.ofSem.requests),
		"consulkit ≤ 5", yesNo(r.ckSem.requests <= 5))
	row(fmt.Sprintf("Semaphore acquire, hold %v, release, reused session: HTTP requests per cycle", heldCycle),
		f2(r.ckSemHeld.requests), f2(r.ofSemHeld.requests), ratio(r.ckSemHeld.requests, r.ofSemHeld.requests),
		"consulkit ≤ 5", yesNo(r.ckSemHeld.requests <= 5))
	row(fmt.Sprintf("Semaphore acquire, hold %v, release, reused session: TCP connections opened per cycle", heldCycle),
		f2(r.ckSemHeld.dials), f2(r.ofSemHeld.dials), "", "", "")
	noElection := "n/a (no election API)"
	row("Election failover, Resign called → next Campaign returns: median / p99", r.failover.resign.medP99(), noElection, "", "", "")
	row("Election failover, leader's session destroyed → next Campaign returns (lock delay 0): median / p99", r.failover.destroy.medP99(), noElection, "", "", "")
	row("Election, leader's session destroyed → old leader's leading context cancelled: median / p99", r.failover.deposed.medP99(), noElection, "", "", "")

	p("\nHow it was measured:\n\n")
	p("- Both clients run in the same process against the same agent, each with its own HTTP transport wrapped in a request-counting `http.RoundTripper` (consulkit: `api.Config.Transport`, with the settings of consulkit's default transport; official: its default pooled go-cleanhttp transport, through `consulapi.Config.HttpClient`). Requests per cycle are all requests a client sent from its first measured cycle until %v after the last cycle of the measurement (the other kinds' rounds included, so its session renewals too), including those that a cycle leaves running (the official client's session destroy and lock monitor), divided by the cycles it ran in that time (the untimed lead cycle of each block included); %d warm-up cycles are not counted. The kinds a row compares are measured together, interleaved: an untimed lead cycle, which absorbs what the previous block left running, then %d timed cycles of one, then the same of the next, in an order that has each kind follow every other kind equally often (a Williams design), so that they share the agent's drift in pace over a run (measured one block after the other, their ratio moved by tens of percent between runs).\n", settleTime, warmup, roundLen)
	p("- Fresh session: consulkit `lock.New(c, key)` (the Lock creates a session per acquisition and destroys it in Unlock); official `LockOpts{Key}` (creates a session per acquisition; Unlock releases and destroys it in the background). Reused session: consulkit one `lock.Lock` with `lock.WithSession(s)`; official `LockOptions{Session: id}` over a session created once and renewed with `RenewPeriodic`.\n")
	p("- Back-to-back cycles: Unlock (or Release) comes before the watch goroutine has sent its blocking query, which it then never sends (the release transaction itself tells whether the lock was still held), so those cycles cost consulkit two requests. The cycles that hold for %v show the cost of a lock held for a while: the watch query is sent, and Unlock lets it return by itself after the release, keeping its connection. A semaphore Acquire right after this Semaphore's Release skips the read of the prefix (its CAS falls back to a read if anything changed).\n", heldCycle)
	p("- The floor row: every lock+unlock cycle of either client is two Raft writes (acquire, release); two raw KV writes back to back take more than half the official client's cycle, so the ½-latency target is out of reach of any client that releases before Unlock returns.\n")
	p("- Handoff: two contenders with their own client and session; the waiter's Lock is called, and once its blocking query is in flight (+%v) the holder calls Unlock; the time is from that call to the waiter's Lock returning. Roles alternate, and the two clients' handoffs are interleaved, one at a time, in the order ck, of, of, ck, ... The baselines are two sequential `KV().Put` calls on a key of their own through a client of the same kind: back to back, interleaved with the reused-session cycles; and %v after the new holder's acquisition, the same idle time as before the holder's Unlock in a handoff (the agent answers a write more slowly after a few idle milliseconds, and more slowly the longer it was idle), one pair between each two handoffs, so that the baseline the target is checked against shares the handoffs' conditions.\n", parkSettle, parkSettle)
	p("- Held locks: the official locks share one session through `LockOptions.Session` (created and renewed once, like consulkit's `session.Session`); the session itself is not counted. Goroutines (`runtime.NumGoroutine`), heap (`HeapAlloc` after `runtime.GC()`) and goroutine stacks (`StackInuse`) are measured once every lock's watch query is parked, and divided by the number of locks; they include the HTTP connection each watch query keeps open (two net/http goroutines each).")
	if e.rotate {
		p(" Connections are spread over %d loopback source addresses: Consul accepts at most 200 HTTP connections per client IP.\n", sourceAddrs)
	} else {
		p("\n")
	}
	p("- Semaphore: consulkit `semaphore.New(c, prefix, %d, semaphore.WithSession(s))`; official `SemaphoreOptions{Prefix, Limit: %d, Session: id}` over a session created once and renewed with `RenewPeriodic`.\n", semLimit, semLimit)
	p("- Election failover (%d per measurement, consulkit only: the official client has no election; leader election with it is its Lock, as in the handoff rows): two candidates with their own client and session (lock delay 0); the next candidate's Campaign is parked in its blocking query when the leader calls Resign, or when another client destroys the leader's session (`PUT /v1/session/destroy`), as an operator or a failing health check would.\n", e.failovers)
	for _, n := range notes {
		p("- Note: %s.\n", n)
	}

	if verbose {
		p("\nRequests by kind:\n\n")
		for _, c := range []struct {
			name string
			r    cycleResult
		}{
			{"consulkit fresh", r.ckFresh}, {"official fresh", r.ofFresh},
			{"consulkit reused", r.ckReuse}, {"official reused", r.ofReuse},
			{"consulkit raw pairs", r.ckRaw}, {"official raw pairs", r.ofRaw},
			{"consulkit reused, held " + heldCycle.String(), r.ckHeldCycle}, {"official reused, held " + heldCycle.String(), r.ofHeldCycle},
		} {
			p("- %s (%d cycles): %s; untimed lead cycle of a block, median: %s\n", c.name, c.r.n, c.r.breakdown, c.r.leads)
		}
		p("- consulkit semaphore (%d cycles): %s\n", r.ckSem.n, r.ckSem.breakdown)
		p("- official semaphore (%d cycles): %s\n", r.ofSem.n, r.ofSem.breakdown)
		p("- consulkit semaphore, held %v: %s\n", heldCycle, r.ckSemHeld.breakdown)
		p("- official semaphore, held %v: %s\n", heldCycle, r.ofSemHeld.breakdown)
		p("- consulkit handoffs (%d): %s\n", e.handoffs, r.ckHand.breakdown)
		p("- official handoffs (%d): %s\n", e.handoffs, r.ofHand.breakdown)
	}
}
