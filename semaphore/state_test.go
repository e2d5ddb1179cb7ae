package semaphore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
)

func TestParse(t *testing.T) {
	const p = "sem"
	lockPair := func(v string) *api.KVPair {
		return &api.KVPair{Key: "sem/.lock", Flags: Flag, Value: []byte(v), ModifyIndex: 7}
	}
	contender := func(name, sess string) *api.KVPair {
		return &api.KVPair{Key: "sem/" + name, Flags: Flag, Session: sess}
	}
	tests := []struct {
		name      string
		pairs     api.KVPairs
		conflict  bool
		limit     int
		live      []string
		lockIndex uint64
		holds     map[string]error
	}{
		{name: "empty", lockIndex: 0, holds: map[string]error{"a": errContenderGone}},
		{
			name:  "holders pruned",
			pairs: api.KVPairs{lockPair(`{"Limit":3,"Holders":{"a":true,"b":true,"c":false,"d":true}}`), contender("a", "a"), contender("b", ""), contender("c", "c"), contender("x", "x")},
			limit: 3, live: []string{"a", "c"}, lockIndex: 7,
			holds: map[string]error{"a": nil, "b": errContenderFreed, "d": errContenderGone, "x": errRemoved},
		},
		{
			name:  "nested keys and other prefixes ignored",
			pairs: api.KVPairs{lockPair(`{"Limit":1,"Holders":{"a":true}}`), contender("a/b", "a"), {Key: "semx/a", Session: "a"}},
			limit: 1, lockIndex: 7,
		},
		{name: "empty value", pairs: api.KVPairs{lockPair(``), contender("a", "a")}, lockIndex: 7, holds: map[string]error{"a": errRemoved}},
		{name: "null holders", pairs: api.KVPairs{lockPair(`{"Limit":2,"Holders":null}`)}, limit: 2, lockIndex: 7},
		{name: "foreign flags", pairs: api.KVPairs{{Key: "sem/.lock", Flags: 1, Value: []byte(`{}`)}}, conflict: true},
		{name: "not JSON", pairs: api.KVPairs{lockPair(`nope`)}, conflict: true},
		{name: "negative limit", pairs: api.KVPairs{lockPair(`{"Limit":-1}`)}, conflict: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := parse(p, tt.pairs, 42)
			if tt.conflict {
				assert.ErrorIs(t, err, ErrConflict)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, uint64(42), v.index)
			assert.Equal(t, tt.limit, v.state.Limit)
			assert.Equal(t, tt.live, v.live())
			assert.Equal(t, tt.lockIndex, v.lockIndex())
			for sid, want := range tt.holds {
				assert.Equal(t, want, v.holds(sid), sid)
			}
		})
	}
}

func TestEncodeNeverNullHolders(t *testing.T) {
	b, err := lockState{Limit: 2}.encode()
	require.NoError(t, err)
	assert.JSONEq(t, `{"Limit":2,"Holders":{}}`, string(b))
	b, err = lockState{Limit: 1, Holders: map[string]bool{"s": true}}.encode()
	require.NoError(t, err)
	assert.Equal(t, `{"Limit":1,"Holders":{"s":true}}`, string(b))
}
