package semaphore

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/consulkit/consulkit/api"
)

// lockState is the JSON value of the coordination key, in the form
// Consul's semaphore protocol uses: {"Limit":N,"Holders":{"<session>":true}}.
// A session counts as a holder when it is a key of Holders, whatever its
// value.
type lockState struct {
	Limit   int
	Holders map[string]bool
}

func (st lockState) encode() ([]byte, error) {
	if st.Holders == nil {
		// The official client writes into Holders after decoding: never
		// store null.
		st.Holders = map[string]bool{}
	}
	return json.Marshal(st)
}

// view is one read of the semaphore's prefix.
type view struct {
	lockPair   *api.KVPair            // the coordination key; nil when absent
	state      lockState              // its decoded value (Limit 0 when absent or empty)
	contenders map[string]*api.KVPair // keys directly under the prefix, by name
	index      uint64                 // the read's index
}

// parse reads the pairs under prefix+"/". A coordination key with other
// flags or a value that is not a semaphore's is ErrConflict.
func parse(prefix string, pairs api.KVPairs, index uint64) (view, error) {
	v := view{contenders: map[string]*api.KVPair{}, index: index}
	base := prefix + "/"
	for _, p := range pairs {
		if p == nil || !strings.HasPrefix(p.Key, base) {
			continue
		}
		name := p.Key[len(base):]
		switch {
		case name == LockKey:
			v.lockPair = p
		case name != "" && !strings.Contains(name, "/"):
			v.contenders[name] = p
		}
	}
	if v.lockPair == nil {
		return v, nil
	}
	if v.lockPair.Flags != Flag {
		return v, fmt.Errorf("%w: %q has flags %#x", ErrConflict, v.lockPair.Key, v.lockPair.Flags)
	}
	if len(v.lockPair.Value) > 0 {
		if err := json.Unmarshal(v.lockPair.Value, &v.state); err != nil {
			return v, fmt.Errorf("%w: %q does not hold a semaphore's JSON: %w", ErrConflict, v.lockPair.Key, err)
		}
		if v.state.Limit < 0 {
			return v, fmt.Errorf("%w: %q has limit %d", ErrConflict, v.lockPair.Key, v.state.Limit)
		}
	}
	return v, nil
}

// alive reports whether holder's contender key exists and is held by the
// holder's session. A holder without one (its session was invalidated, it
// released or crashed half-way) is dead and may be pruned.
func (v view) alive(holder string) bool {
	p := v.contenders[holder]
	return p != nil && p.Session == holder
}

// live returns the holders whose contender keys are alive, sorted.
func (v view) live() []string {
	var out []string
	for h := range v.state.Holders {
		if v.alive(h) {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}

// lockIndex is the coordination key's ModifyIndex for a CAS (0: absent).
func (v view) lockIndex() uint64 {
	if v.lockPair == nil {
		return 0
	}
	return v.lockPair.ModifyIndex
}

// holds reports why sid does not hold a slot in v, or nil when it does.
func (v view) holds(sid string) error {
	own := v.contenders[sid]
	switch {
	case own == nil:
		return errContenderGone
	case own.Session != sid:
		return errContenderFreed
	case v.lockPair == nil:
		return errLockGone
	}
	if _, ok := v.state.Holders[sid]; !ok {
		return errRemoved
	}
	return nil
}
