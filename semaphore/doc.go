// Package semaphore implements a counting semaphore over a Consul prefix:
// at most N sessions hold a slot at once.
//
// It speaks Consul's semaphore protocol, so a consulkit Semaphore, the
// official Go client's Semaphore and `consul lock -n N` share the slots of
// one prefix:
//
//   - each holder has a contender key "<prefix>/<session ID>", acquired
//     with its session, with flag 0xe0f69a2baa414de0 and the holder's value
//     (WithValue);
//   - the coordination key "<prefix>/.lock", with the same flag, holds the
//     JSON {"Limit":N,"Holders":{"<session ID>":true,...}} and is only ever
//     changed by check-and-set on its ModifyIndex;
//   - a holder whose contender key is gone, or no longer held by its
//     session, is dead: whoever next writes the coordination key prunes it.
//
// # Guarantees
//
//   - Never more than the limit: every write of the coordination key is a
//     CAS on the state it was computed from, and adds a holder only when
//     fewer than Limit live holders remain.
//   - An acquisition is one transaction that both CASes the coordination
//     key and locks the contender key: a contender key exists only for a
//     holder. A failed or cancelled Acquire returns ctx.Err() (or the
//     error) and leaves nothing behind (a session it was creating for
//     itself when ctx ended is destroyed once Consul answers, which Acquire
//     waits up to 5 seconds more for, and the destroy up to 5 more); when
//     a cancelled attempt may have been applied, it is undone before
//     Acquire returns, and when it may
//     still be (a request held up in a busy agent arrives late), its CAS is
//     made to fail first: the coordination key is rewritten (or created,
//     empty, where the attempt would create it). For the same reason the
//     coordination key, once created, is never deleted, not even by the
//     last holder's Release (the official client does not delete it
//     either): an unanswered attempt of any process that would create it
//     may still land, and only the key's existence makes it fail. A key
//     deleted by someone else (the official client's Destroy, an
//     operator) reopens that window.
//   - While held, one consistent blocking query per slot follows the
//     prefix. When the contender key is deleted or loses its session, this
//     session is removed from the holders, the coordination key is deleted
//     or overwritten, or the session is lost, the held context is cancelled
//     with a cause wrapping ErrLost.
//   - Release ends the held context (ErrReleased; a cause wrapping ErrLost
//     when the session has already ended) before it sends anything, then
//     sends one transaction: it checks that the contender
//     key is still held by this session (else Release reports ErrLost and
//     removes what is left), removes this session from the holders (by
//     CAS, so that it never races a new contender; the last holder leaves
//     the key with no holders) and deletes the contender key. Transient errors are retried until Release's ctx or
//     the session ends; a release that still fails leaves the slot held
//     until the session ends, and says so. Each acquisition or release
//     transaction gets at most 10 seconds: one stuck on a connection that
//     died without a reset is sent again on a new connection. The first
//     Release after a loss returns ErrNotHeld wrapping it (ErrLost);
//     semaphore.Do releases even when fn panics.
//   - An acquisition always writes: a slot that the prefix shows this
//     session already holding (left by a failed Release with a reused
//     session, or a stale read) is written afresh by the acquisition's
//     transaction, never taken as is.
//   - A limit that disagrees with the stored one is ErrLimitConflict while
//     the semaphore has live holders; a coordination key with no live
//     holder is taken over with the new limit.
//   - Cost with a reused session (WithSession): acquiring a free slot is
//     one read of the prefix and one transaction; holding is one blocking
//     query (not sent when the slot is released before the watcher gets
//     to send it); Release is one transaction. An Acquire within 2s of
//     this Semaphore's Release first tries the prefix as the Release left
//     it, without reading: the CAS refuses it if anything changed since,
//     and then it reads as usual. Waiting for a slot is blocking queries
//     on the prefix, never polling.
//
// # Limits: a lease is not a fence
//
// A slot is held through a Consul session, a lease. Between the moment
// Consul invalidates the session (TTL, node failure, destroyed) and the
// moment this process sees the held context cancelled, another process may
// already use the freed slot: a paused process learns of its loss late.
// The semaphore bounds concurrency for well-behaved holders; it does not
// protect a resource that must never see N+1 users. Holders are pruned
// only when their contender keys are gone or free, which for a crashed
// process happens when its session is invalidated (after its TTL).
//
// Contender keys are named by session, so one session holds at most one
// slot of a semaphore: a second Semaphore on the same prefix and session
// fails with session.ErrClaimed. Use a Semaphore per concurrent holder.
package semaphore
