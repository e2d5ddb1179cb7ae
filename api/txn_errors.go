package api

import "strings"

// The classifications below read the messages Consul 1.14 to 1.16 put in
// the errors of a rolled-back transaction, so that callers can decide by
// method rather than by text.

// LockDelayed reports whether a KV lock operation was refused because a
// lock-delay is in force on the key.
func (e TxnOpError) LockDelayed() bool { return strings.Contains(e.What, "due to lock delay") }

// LockHeld reports whether a KV lock operation failed because another
// session holds the key.
func (e TxnOpError) LockHeld() bool { return strings.Contains(e.What, "lock is already held") }

// NotHeld reports whether a KV unlock or check-session operation failed
// because the session does not hold the key.
func (e TxnOpError) NotHeld() bool {
	return strings.Contains(e.What, "lock isn't held") || strings.Contains(e.What, "failed session check") ||
		strings.Contains(e.What, "failed to check session")
}

// IndexMismatch reports whether a check-index, cas or delete-cas operation
// failed because the key changed or does not exist.
func (e TxnOpError) IndexMismatch() bool {
	return strings.Contains(e.What, "failed index check") || strings.Contains(e.What, "index is stale") ||
		strings.Contains(e.What, "failed to check index")
}

// Exists reports whether a check-not-exists operation failed because the
// key exists.
func (e TxnOpError) Exists() bool {
	return strings.Contains(e.What, "exists") && !strings.Contains(e.What, "doesn't exist")
}

// InvalidSession reports whether an operation failed because the session
// it names does not exist (destroyed or invalidated).
func (e TxnOpError) InvalidSession() bool { return strings.Contains(e.What, "invalid session") }

// PermissionDenied reports whether an operation was refused because the
// token lacks a permission.
func (e TxnOpError) PermissionDenied() bool { return strings.Contains(e.What, "Permission denied") }

// Op returns the failed operation with index i, if it is among the errors.
func (e *TxnError) Op(i int) (TxnOpError, bool) {
	for _, oe := range e.Errors {
		if oe.OpIndex == i {
			return oe, true
		}
	}
	return TxnOpError{}, false
}
