// Package session manages Consul sessions that renew themselves and report
// their loss at once.
//
// A Session is created by New and renewed by one goroutine at half its TTL.
// A renew failure other than 404 (a network error, 5xx, no leader, even a
// 403) is retried about every second, with jitter, until the local
// deadline: the send time of the last successful renew plus the TTL. Only
// then is the session reported lost, with ErrExpired. A renew not answered
// within half the time left (at most two seconds) is not given up: another
// goes out beside it, on another connection, and so on (four at a time;
// when four wait, the oldest stops counting against them after 10
// seconds, so a fresh one goes out, and is cancelled only when eight are
// in flight) until one is answered. So a renew that hangs on a
// connection that died silently costs no false loss, nor does a Consul
// that answers slowly. The first success counts, from its own send
// time. The TTL Consul answers with (longer or shorter than requested) is
// the one the deadline is computed with. A renew answered with 404
// (destroyed from outside, invalidated by a failing health check) is
// reported lost at once, with ErrInvalidated. Loss closes Done, and Err
// says why.
//
// The local deadline is conservative: Consul itself invalidates a session
// only after twice its TTL without renewal. When the Session reports
// ErrExpired, Consul may still hold it for up to one more TTL; when Done is
// still open, Consul has not invalidated the session by its TTL, though a
// health check or an operator may have destroyed it since the last renew
// (that is seen at the next renew, within TTL/2, or at once by Renew).
//
// Renew renews at once, outside the schedule. A holder whose request
// through the session was refused with "invalid session" calls it, and
// the loss shows in Err and Done as soon as Consul answers it with 404,
// for every other user of the session too: lock, semaphore and election do
// so themselves, and also when a key they hold is released or deleted (as
// Consul does to the keys of a session it invalidates), whether their
// watcher finds it (right after reporting the loss) or an Unlock, Release
// or Resign does. A Renew that gets no answer changes nothing: the renew
// loop finds the loss at its next renew, within TTL/2.
// Renews may overlap: the one sent last sets the deadline.
//
// One Session can back any number of locks, elections and semaphore slots:
// they share its renew goroutine. Each of them held keeps one blocking
// query, and so one connection, open to the agent, while Consul limits
// the connections of one client address (limits.http_max_conns_per_client,
// 200 by default) and refuses requests beyond it with 429: the session's
// renews among them, until it expires and every holder is lost. Raise
// that limit, or spread holders over several agents, before holding about
// 200 at once from one address. Close stops renewing, waits for the
// goroutine and destroys the session, which releases (or deletes, with
// Behavior Delete) every key it holds.
//
// A session is a lease, not a fence: between the moment Consul invalidates
// it and the moment this process learns of it, the process may still act
// as a holder. Protect external resources with the fencing token of the
// lock package.
package session
