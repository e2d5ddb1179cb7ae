// Package election implements leader election over one Consul key, for
// singleton jobs: one active instance, the others on standby.
//
// The leader is the session holding the election key, which is a lock of
// package lock (flag 0x2ddccbc058a50c18, Consul's lock protocol); the key's
// value describes the leader with bytes chosen by the caller (an address,
// an ID). Campaign is lock.Lock with the candidate's value, Resign is
// Unlock, and Proclaim rewrites the value in a transaction that checks the
// session still holds the key.
//
//	e, err := election.New(client, "service/report-cron/leader", election.WithSession(s))
//	leading, err := e.Campaign(ctx, []byte("10.0.0.7:9000")) // blocks until elected
//	err = e.Proclaim(ctx, []byte("10.0.0.7:9001"))           // change the value while leading
//	err = e.Resign(ctx)
//	l, err := e.Leader(ctx)                                   // or election.ErrNoLeader
//	for l := range e.Observe(ctx) { ... }                     // every change until ctx ends
//	err = election.Run(ctx, client, key, value, func(leading context.Context) error { ... })
//
// # Guarantees
//
//   - Campaign never reports success without the key being held by the
//     Election's session at the moment of the answer; a cancelled ctx
//     leaves nothing held (see package lock).
//   - While leading, one consistent blocking query follows the key. When
//     the key is deleted, taken by another session, or the session is
//     lost, the leading context is cancelled with a cause wrapping
//     ErrDeposed; after Resign the cause is ErrResigned.
//   - Resign releases the key without a lock-delay: a waiting candidate is
//     elected within one blocking-query round trip. When the leader's
//     session is invalidated instead (crash, TTL, destroyed), the key is
//     blocked for that session's lock-delay (15s by default), so that a
//     deposed leader has time to notice and stop.
//   - Observe and Leader read the key; observers see the leader as it
//     changes, within one blocking-query round trip (changes closer
//     together than that may arrive as the latest one), a slow reader the
//     latest one.
//   - Run never runs two calls of its function at once, and campaigns
//     again after a loss only once the function has returned (after a
//     pause, up to 10 s, when terms keep ending within seconds).
//   - OnElected and OnDeposed alternate: a term's OnDeposed returns before
//     the next term's OnElected is called.
//   - Cost with a reused session: a campaign is one read and one
//     transaction (one more where the key does not exist yet: it is
//     created free first), leading is one blocking query, Resign one
//     transaction; an observer is one blocking query.
//
// # Limits: a lease is not a fence
//
// Leadership is a lease held through a Consul session. Between the moment
// Consul hands the key to another candidate and the moment the old leader
// sees its leading context cancelled, both may act as leaders: a paused
// process (GC, swap, a slow network) learns of its loss late, and Consul
// itself only notices a silent leader after its session's TTL (up to twice
// the TTL). The lock-delay narrows that window but does not close it.
// Pass the fencing token to what the leader writes to, and make it refuse
// a token older than the newest it has seen:
//
//	tok := e.Token() // stable for the term
//	db.Exec("UPDATE cron SET last_run = $1, fence = $2 WHERE fence <= $2", now, tok.ModifyIndex)
//
// A Leader read by an observer carries the key's current ModifyIndex,
// which a Proclaim raises; it is still greater than any token of an
// earlier leader. For writes to Consul itself, use a transaction with a
// check-session on the election key.
//
// Observe sends a zero Leader while the key is free. A key that exists with
// other flags (not a lock's) is reported as no leader by Observe, and as an
// error wrapping lock.ErrConflict by Leader and Campaign.
package election
