package election

import (
	"testing"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/lock"
)

// A key deleted and won again by the same session starts its LockIndex
// over: it is a new term all the same.
func TestSameTerm(t *testing.T) {
	pair := func(sess string, create, lockIdx, modify uint64, value string) *api.KVPair {
		return &api.KVPair{Key: "k", Session: sess, Flags: lock.Flag, CreateIndex: create, LockIndex: lockIdx, ModifyIndex: modify, Value: []byte(value)}
	}
	term := leaderOf("k", pair("s1", 10, 1, 18, "a"))
	tests := []struct {
		name string
		b    Leader
		same bool
	}{
		{"proclaimed", leaderOf("k", pair("s1", 10, 1, 20, "b")), true},
		{"released and won again", leaderOf("k", pair("s1", 10, 2, 22, "a")), false},
		{"deleted and won again", leaderOf("k", pair("s1", 23, 1, 23, "a")), false},
		{"another session", leaderOf("k", pair("s2", 10, 2, 22, "a")), false},
		{"no leader", leaderOf("k", nil), false},
	}
	for _, tt := range tests {
		if got := sameTerm(term, tt.b); got != tt.same {
			t.Errorf("%s: sameTerm = %v, want %v", tt.name, got, tt.same)
		}
	}
	if !sameTerm(Leader{}, leaderOf("k", nil)) {
		t.Error("no leader and no leader: the same")
	}
}
