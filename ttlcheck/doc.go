// Package ttlcheck lets an application tell Consul that it is alive and
// healthy through a TTL check.
//
// A Heartbeat registers a TTL check with the local agent (on its own, or
// attached to a service), then updates it every interval with a status and
// a note (the check's output), and deregisters it when Run returns:
//
//	hb, err := ttlcheck.New(client, ttlcheck.Check{
//		ID: "web-1-alive", Name: "web alive", TTL: 10 * time.Second, ServiceID: "web-1",
//	}, ttlcheck.WithProbe(probe))
//	...
//	err = hb.Run(ctx) // blocks until ctx ends
//
// The status comes from a Probe (WithProbe, or ErrorProbe around a
// func(ctx) error), from explicit calls to Pass, Warn and Fail, or both:
// the most recent of the two wins (a probe counts from when it started),
// and it sticks until the next probe result or explicit call. Without a probe, each beat re-sends the last
// explicit status (Passing until the first call). NewService registers a
// service together with its TTL check and removes both on return.
//
// # Guarantees
//
//   - Validation first: New and NewService check everything (IDs and
//     names, TTL at least 1s, interval shorter than the TTL, probe timeout
//     shorter than the interval, ...) and send nothing; bad input is a
//     *ConfigError matching ErrInvalid. The caller's Check and
//     registration are copied, never modified.
//   - Beats keep their pace: a beat is sent one interval (default TTL/3)
//     after the previous successful one, whatever the probe does. The
//     probe starts WithProbeTimeout (default interval/2) before the beat is
//     due and must answer by then; a probe that times out, panics or
//     returns an unknown status is reported as Critical with the reason as
//     the note, and the application keeps running.
//   - A probe that ignores its context does not stop the beats (they
//     report Critical until it returns, and no second probe is started),
//     but Run waits for it before returning: no goroutine of the package
//     outlives Run.
//   - The agent forgetting the check (it was deregistered, or the agent
//     restarted: api.IsUnknownCheck) makes Run register it again (with its
//     service, for NewService) and keep beating. Transient errors
//     (api.IsRetryable, timeouts) are retried with jittered backoff,
//     starting at interval/8 (50ms..1s) and growing to one interval, so
//     several retries fit within the TTL. A request that is not answered
//     (a dead connection, a stalled agent) is given at most half of what
//     is left of the TTL (at least 200ms, at most the interval bounded to
//     1s..10s), so that its retry still reaches the agent in time. A beat
//     that waits for the agent for an interval or more is probed again
//     (every interval), so that the agent, once it answers, gets what the
//     probe says then, not what it said before the outage; a probe that
//     does not answer by its deadline makes it Critical, and a status set
//     with Pass, Warn or Fail is kept for an interval before it is probed
//     over, as without an outage.
//   - Notes are bounded to MaxNoteSize (4 KiB) and cut with
//     TruncatedMarker.
//   - Status changes, re-registrations, retried failures and probe panics
//     go to the *slog.Logger given with WithLogger (nothing is logged by
//     default).
//
// # Limits
//
//   - A TTL check reports that the process beats, not that it is correct:
//     it is only as good as the probe. Consul marks the check critical when
//     the TTL passes without a beat, which is at least one TTL after the
//     process stopped, hung or lost its agent.
//   - The check lives on the local agent. If the agent is unreachable for
//     longer than the TTL, the agent marks the check critical (or, if the
//     agent itself is down, Consul's servers mark the node's serfHealth
//     critical); Run keeps retrying and restores the status when the agent
//     answers again.
//   - A check attached with Check.ServiceID to a service registered by
//     someone else can only be registered again once that service is back
//     on the agent: until then Run logs and retries. Use NewService to
//     have both restored together.
//   - Output-only changes reach the catalog (the /v1/health endpoints) no
//     more often than the agent's check_update_interval (5 minutes by
//     default); status changes are synced at once. The agent's own view
//     (/v1/agent/checks) is always current.
//
// # Tying a session, and so a lock, to the application's health
//
// A Consul session can name health checks: it is invalidated as soon as
// one of them goes critical or is removed, and the locks it holds are
// released (or their keys deleted). Creating the session with the
// heartbeat's check among its checks ties a lock's life to the
// application's health, not just to the process being alive:
//
//	hb, _ := ttlcheck.New(client, ttlcheck.Check{ID: "worker-1-alive", Name: "worker alive", TTL: 10 * time.Second},
//		ttlcheck.WithProbe(probe))
//	go hb.Run(ctx)
//	// Wait until the check is passing in the catalog, then:
//	s, err := session.New(ctx, client, session.WithName("worker-1"),
//		session.WithNodeChecks("serfHealth", "worker-1-alive")) // a node-level check
//	// For a check attached to a service (NewService or Check.ServiceID):
//	// session.WithServiceChecks("worker-1-alive").
//	// Then lock.New(client, key, lock.WithSession(s)), and so on.
//
// The session then ends when the probe reports Critical, when beats stop
// for a TTL (the process hung or died, WithKeepCheck) or when Run returns
// and deregisters the check. Consul refuses to create a session whose
// checks are critical or not yet in the catalog, so create it after the
// first beat has been synced. Warning does not invalidate a session.
// Invalidation is observed by the lock holder only through Consul, after
// a delay: it is a lease, not a fence; use the lock's fencing token
// where a stale holder must be rejected.
package ttlcheck
