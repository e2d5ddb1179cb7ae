// Package lock implements a distributed mutual-exclusion lock over one
// Consul key, with a fencing token.
//
// The lock speaks Consul's own lock protocol: the key carries flag
// 0x2ddccbc058a50c18, its value is the holder's value, and the holder is the
// session attached to the key with acquire. A consulkit Lock, `consul lock`
// (which locks "<prefix>/.lock") and the official Go client's Lock exclude
// one another on the same key.
//
// # Guarantees
//
//   - Lock and TryLock never report success without the key being held by
//     the Lock's session at the moment of the answer. A cancelled ctx gives
//     ctx.Err() and leaves nothing held: when a cancelled attempt may have
//     been applied, the Lock releases the key before returning; when it may
//     still be (a request held up in a busy agent arrives late), the Lock
//     first makes it fail, by moving the key past the index the attempt
//     checks (a free key it read is deleted). No attempt locks an absent
//     key: it is created free first, then locked on its index (a Lock
//     that fails after that leaves the key free, as Unlock does). Any
//     acquisition of this Lock is reported with a token newer than every
//     hold its session had before (a hold left by a failed release is
//     released and acquired again, never taken over). A session the Lock
//     was creating for itself when ctx ended is not left to lapse: Lock
//     waits up to 5 seconds more for Consul's answer, and up to 5 more
//     to destroy it.
//   - A key that exists with other flags (a semaphore's key, plain data) is
//     never overwritten: every attempt checks the key is as last read, in
//     the same transaction that locks it, and ErrConflict is returned.
//   - While held, one consistent blocking query per Lock follows the key. When
//     the key is deleted, taken by another session or released by someone
//     else, or when the session is lost, the held context is cancelled with
//     cause ErrLost; so it is, before GuardedTxn returns, when Consul
//     refuses a guarded write because the session no longer holds the key,
//     whether or not the watch has seen it yet. Transient errors are
//     retried while the session lives; the session reports loss at its
//     deadline (see package session). Each answer confirms the hold. The
//     query waits at most a third of the session TTL (WithWaitTime,
//     capped), one stuck past its wait is given
//     up and the key read again at once, on a new connection; when no
//     answer has come for two TTLs (reads that fail or hang while the
//     session renews on other connections), the lock is reported lost with
//     ErrUnconfirmed and let go: that release is tried for up to 30
//     seconds, and only while the key is as the lost holding last knew it,
//     so it never lets go of a later hold through the same session. A lock
//     lost because its session expired here (renews failed until its local
//     deadline) is let go with one release on the same condition: Consul
//     may keep the session, and the key, for up to one more TTL, and
//     impose its lock-delay when it drops it. A held lock thus costs one
//     read per TTL/3 while nothing changes.
//   - Unlock cancels the held context (cause ErrUnlocked) before it sends
//     the release, so that what the context guards stops before another
//     holder can take the key. It retries transient errors until its ctx
//     ends or the session does; a ctx that has already ended when Unlock
//     is called (a deferred Unlock after a shutdown) still gets the
//     release sent, within 5 seconds. A release that still fails leaves the
//     key held by the session: an own session is destroyed at once; a
//     caller's session keeps it until the session ends or the Lock locks
//     again. After a loss, Unlock returns an error wrapping ErrLost (test
//     with errors.Is): when the loss was reported first (by the watcher,
//     or by the session's end, which ends the held context directly), it
//     waits for the Lock's cleanup and the error also wraps ErrNotHeld,
//     once. lock.Do unlocks even when fn panics.
//   - Each acquisition or release transaction, and each plain read, the
//     Lock sends gets at most 10 seconds: one stuck on a connection that
//     died without a reset is given up and sent again on a new connection,
//     so a Lock, TryLock or Unlock with a context that never ends does not
//     hang with it. (Blocking queries are bounded by their wait time.)
//   - Tokens strictly grow across acquisitions of a key (Token.ModifyIndex is
//     the Raft index of the acquiring write). Lock never reports as a new
//     acquisition a hold its session kept from an earlier one: it releases
//     that hold first, and writes again.
//   - A request of Lock in flight when the session ends is abandoned, and
//     Lock returns the session's error when the session is the caller's
//     (WithSession) or the call is TryLock; a session the Lock made for
//     itself is replaced, and Lock waits on. A key overwritten with other flags
//     while held (a plain write) is a loss with ErrConflict, and the
//     session lets go of it, keeping what was written. The release checks
//     the key's index as the Lock last knew it (acquired, followed,
//     written by GuardedTxn), so an Unlock that comes before the watcher
//     has seen such a write does the same and returns ErrLost wrapping
//     ErrConflict: it never overwrites it.
//   - One acquisition over a reused session and Lock (after its first,
//     which reads the key first, and on a key that does not exist yet
//     creates it free before locking it on its index: an attempt on an
//     absent key that arrived late could otherwise apply whenever the key
//     is deleted again; lock.Do makes a new Lock each time, so it costs a
//     read more) costs at most three requests:
//     one transaction to check, lock and read the token, one blocking query
//     that watches, one transaction to release. The watch is not sent when
//     Unlock comes before the watcher got to send it (a short critical
//     section): the release transaction itself then tells whether the lock
//     was still held. Waiting is blocking queries, never polling; after a
//     refusal caused by a lock-delay, the next attempt waits until that
//     delay is estimated to end (from when this Lock saw the key freed,
//     plus up to 100ms); a Lock that never saw the holder whose delay it
//     is (another session may have held the key between two of its reads),
//     and so cannot tell how long it lasts, tries again at growing pauses of
//     up to a second.
//
// # Limits: a lease is not a fence
//
// A lock in Consul is a lease. Between the moment Consul gives the key to
// another session (after this session's TTL ran out, or was destroyed) and
// the moment this process sees the held context cancelled, both may act as
// holders: a paused process (GC, swap) learns it late. Do not rely on the
// held context alone to protect a resource; pass the Token to it and make it
// refuse a token older than the newest it has seen:
//
//	tok := l.Token() // or lock.TokenFrom(held), inside lock.Do
//	db.Exec("UPDATE jobs SET result = $1, fence = $2 WHERE id = $3 AND fence <= $2",
//	    result, tok.ModifyIndex, id)
//
// For writes to Consul itself, GuardedTxn and GuardedPut make Consul check,
// atomically with the write, that the session still holds the key.
//
// Each held Lock keeps one HTTP connection busy with its blocking query.
// Consul limits the connections of one client address
// (limits.http_max_conns_per_client, 200 by default) and answers 429 beyond
// that: a process holding hundreds of locks on one agent must raise the
// limit or spread its clients over several source addresses.
//
// A lock-delay (the session's, 15s by default; session.WithLockDelay) keeps
// the key from being acquired for a while after the holder's session is
// invalidated, giving a deposed holder time to notice and stop.
package lock
