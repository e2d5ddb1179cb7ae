package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/consulkit/consulkit/api"
)

// exKVStore is a tiny in-memory stand-in for Consul's KV store, sessions
// and KV transactions, enough for the examples to run without a server.
type exKVStore struct {
	mu       sync.Mutex
	index    uint64
	pairs    map[string]*api.KVPair
	sessions map[string]json.RawMessage
}

func newExKVServer() (*httptest.Server, *api.Client) {
	s := &exKVStore{index: 1, pairs: map[string]*api.KVPair{}, sessions: map[string]json.RawMessage{}}
	srv := httptest.NewServer(s)
	cfg := api.DefaultConfig()
	cfg.Address = srv.URL
	c, err := api.NewClient(cfg)
	if err != nil {
		panic(err)
	}
	return srv, c
}

func (s *exKVStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	reply := func(v any) {
		w.Header().Set("X-Consul-Index", strconv.FormatUint(s.index, 10))
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case r.URL.Path == "/v1/session/create":
		// Consul answers with LockDelay in nanoseconds and TTL as a string.
		var in struct{ Name, LockDelay, TTL string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		ld, _ := time.ParseDuration(in.LockDelay)
		id := "5e1f4b9c-2f7a-4c1e-9a55-0d2b8e6f1a3" + strconv.Itoa(len(s.sessions))
		s.sessions[id] = json.RawMessage(fmt.Sprintf(`{"ID":%q,"Name":%q,"Node":"node-1","LockDelay":%d,"Behavior":"release","TTL":%q}`,
			id, in.Name, ld, in.TTL))
		reply(map[string]string{"ID": id})
	case strings.HasPrefix(r.URL.Path, "/v1/session/renew/"):
		se, ok := s.sessions[strings.TrimPrefix(r.URL.Path, "/v1/session/renew/")]
		if !ok {
			http.Error(w, "Session id not found", http.StatusNotFound)
			return
		}
		reply([]json.RawMessage{se})
	case strings.HasPrefix(r.URL.Path, "/v1/session/destroy/"):
		delete(s.sessions, strings.TrimPrefix(r.URL.Path, "/v1/session/destroy/"))
		reply(true)
	case r.URL.Path == "/v1/txn":
		var ops api.TxnOps
		_ = json.NewDecoder(r.Body).Decode(&ops)
		s.txn(w, ops)
	case strings.HasPrefix(r.URL.Path, "/v1/kv/"):
		key := strings.TrimPrefix(r.URL.Path, "/v1/kv/")
		switch r.Method {
		case http.MethodGet:
			var out api.KVPairs
			for k, p := range s.pairs {
				if k == key || q.Has("recurse") && strings.HasPrefix(k, key) {
					out = append(out, p)
				}
			}
			sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
			if len(out) == 0 {
				w.Header().Set("X-Consul-Index", strconv.FormatUint(s.index, 10))
				w.WriteHeader(http.StatusNotFound)
				return
			}
			reply(out)
		case http.MethodPut:
			body, _ := io.ReadAll(r.Body)
			p := s.pairs[key]
			if q.Has("cas") {
				want, _ := strconv.ParseUint(q.Get("cas"), 10, 64)
				if p == nil && want != 0 || p != nil && p.ModifyIndex != want {
					reply(false)
					return
				}
			}
			if sess := q.Get("acquire"); sess != "" && p != nil && p.Session != "" && p.Session != sess {
				reply(false)
				return
			}
			flags, _ := strconv.ParseUint(q.Get("flags"), 10, 64)
			s.set(key, body, flags, q.Get("acquire"))
			reply(true)
		}
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (s *exKVStore) set(key string, value []byte, flags uint64, session string) *api.KVPair {
	s.index++
	p := s.pairs[key]
	if p == nil {
		p = &api.KVPair{Key: key, CreateIndex: s.index}
		s.pairs[key] = p
	}
	p.Value, p.Flags, p.ModifyIndex = value, flags, s.index
	if session != "" && p.Session == "" {
		p.Session = session
		p.LockIndex++
	}
	return p
}

// txn applies set, get and check-index operations all or nothing.
func (s *exKVStore) txn(w http.ResponseWriter, ops api.TxnOps) {
	var errs []api.TxnOpError
	for i, op := range ops {
		p := s.pairs[op.KV.Key]
		if op.KV.Verb == api.KVCheckIndex && (p == nil || p.ModifyIndex != op.KV.Index) {
			errs = append(errs, api.TxnOpError{OpIndex: i, What: "failed index check for key " + strconv.Quote(op.KV.Key)})
		}
	}
	if len(errs) > 0 {
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(map[string]any{"Results": nil, "Errors": errs})
		return
	}
	var results []api.TxnResult
	for _, op := range ops {
		switch op.KV.Verb {
		case api.KVSet:
			p := *s.set(op.KV.Key, op.KV.Value, op.KV.Flags, "")
			p.Value = nil
			results = append(results, api.TxnResult{KV: &p})
		case api.KVGet:
			results = append(results, api.TxnResult{KV: s.pairs[op.KV.Key]})
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"Results": results})
}

// ExampleKV shows reads and writes of the KV store, and a check-and-set
// update that loses against a concurrent writer.
func ExampleKV() {
	srv, client := newExKVServer()
	defer srv.Close()
	ctx := context.Background()
	kv := client.KV()

	if _, err := kv.Put(ctx, &api.KVPair{Key: "app/config/mode", Value: []byte("blue")}, nil); err != nil {
		fmt.Println(err)
		return
	}
	pair, _, err := kv.Get(ctx, "app/config/mode", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s = %s\n", pair.Key, pair.Value)

	// A missing key is not an error.
	missing, _, err := kv.Get(ctx, "app/config/absent", nil)
	fmt.Println(missing == nil, err)

	// Check-and-set: write only if nobody changed the key since we read it.
	ok, _, err := kv.CAS(ctx, &api.KVPair{Key: pair.Key, Value: []byte("green"), ModifyIndex: pair.ModifyIndex}, nil)
	fmt.Println("first CAS:", ok, err)
	ok, _, err = kv.CAS(ctx, &api.KVPair{Key: pair.Key, Value: []byte("red"), ModifyIndex: pair.ModifyIndex}, nil)
	fmt.Println("stale CAS:", ok, err)

	pairs, _, err := kv.List(ctx, "app/", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range pairs {
		fmt.Printf("%s = %s\n", p.Key, p.Value)
	}
	// Output:
	// app/config/mode = blue
	// true <nil>
	// first CAS: true <nil>
	// stale CAS: false <nil>
	// app/config/mode = green
}

// ExampleKV_Acquire creates a session and locks a key with it: the key
// holds the lock holder's value and names the session.
func ExampleKV_Acquire() {
	srv, client := newExKVServer()
	defer srv.Close()
	ctx := context.Background()

	id, _, err := client.Session().Create(ctx, &api.SessionEntry{
		Name:      "report-worker",
		TTL:       api.SessionTTLMin,
		LockDelay: 0, // sent as "0s": no lock-delay after the holder goes away
		Behavior:  api.SessionBehaviorRelease,
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ok, _, err := client.KV().Acquire(ctx, &api.KVPair{Key: "jobs/report/lock", Value: []byte("worker-7"), Session: id}, nil)
	fmt.Println("acquired:", ok, err)
	ok, _, err = client.KV().Acquire(ctx, &api.KVPair{Key: "jobs/report/lock", Session: "another-session"}, nil)
	fmt.Println("another session:", ok, err)

	pair, _, err := client.KV().Get(ctx, "jobs/report/lock", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(pair.Value), pair.Session == id, pair.LockIndex)
	// Output:
	// acquired: true <nil>
	// another session: false <nil>
	// worker-7 true 1
}

// ExampleSessionHandle shows a session's life: created with a TTL, renewed
// before it runs out, destroyed; renewing it afterwards is ErrNotFound.
func ExampleSessionHandle() {
	srv, client := newExKVServer()
	defer srv.Close()
	ctx := context.Background()
	sessions := client.Session()

	id, _, err := sessions.Create(ctx, &api.SessionEntry{Name: "billing-worker", TTL: 15 * time.Second}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	se, _, err := sessions.Renew(ctx, id, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(se.Name, se.TTL, se.LockDelay)

	if _, err := sessions.Destroy(ctx, id, nil); err != nil {
		fmt.Println(err)
		return
	}
	_, _, err = sessions.Renew(ctx, id, nil)
	fmt.Println("lost:", errors.Is(err, api.ErrNotFound))
	// Output:
	// billing-worker 15s 0s
	// lost: true
}

// ExampleTxn_Do writes two keys atomically, then shows a transaction that
// Consul rolls back because a key changed.
func ExampleTxn_Do() {
	srv, client := newExKVServer()
	defer srv.Close()
	ctx := context.Background()

	resp, _, err := client.Txn().Do(ctx, api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "deploy/version", Value: []byte("v2")}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "deploy/by", Value: []byte("ci")}},
		{KV: &api.KVTxnOp{Verb: api.KVGet, Key: "deploy/version"}},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	version := resp.Results[2].KV
	fmt.Printf("%s = %s at index %d\n", version.Key, version.Value, version.ModifyIndex)

	// Guard a write with the index we read: someone else wrote since.
	_, _, err = client.Txn().Do(ctx, api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: "deploy/version", Index: version.ModifyIndex - 1}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "deploy/version", Value: []byte("v3")}},
	}, nil)
	var te *api.TxnError
	if errors.As(err, &te) {
		for _, e := range te.Errors {
			fmt.Printf("op %d failed: %s\n", e.OpIndex, e.What)
		}
	}
	// Output:
	// deploy/version = v2 at index 2
	// op 0 failed: failed index check for key "deploy/version"
}

// ExampleWatch follows a key with blocking queries until the callback has
// seen enough.
func ExampleWatch() {
	// A server where the key changes once per blocking read.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idx, _ := strconv.Atoi(r.URL.Query().Get("index"))
		next := idx + 1
		w.Header().Set("X-Consul-Index", strconv.Itoa(next))
		_ = json.NewEncoder(w).Encode([]api.KVPair{{Key: "config/color", Value: []byte("color-" + strconv.Itoa(next)), ModifyIndex: uint64(next)}})
	}))
	defer srv.Close()
	cfg := api.DefaultConfig()
	cfg.Address = srv.URL
	client, err := api.NewClient(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}

	errEnough := errors.New("seen enough")
	seen := 0
	err = api.Watch(context.Background(), nil,
		func(ctx context.Context, q *api.QueryOptions) (*api.KVPair, *api.QueryMeta, error) {
			return client.KV().Get(ctx, "config/color", q)
		},
		func(p *api.KVPair, meta *api.QueryMeta) error {
			fmt.Printf("%s at index %d\n", p.Value, meta.LastIndex)
			if seen++; seen == 3 {
				return errEnough
			}
			return nil
		})
	fmt.Println(errors.Is(err, errEnough))
	// Output:
	// color-1 at index 1
	// color-2 at index 2
	// color-3 at index 3
	// true
}

// ExampleWatchChan receives the latest value of a key on a channel until
// the context ends.
func ExampleWatchChan() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("index") {
			<-r.Context().Done() // nothing changes after the first read
			return
		}
		w.Header().Set("X-Consul-Index", "7")
		_, _ = io.WriteString(w, `[{"Key":"feature/flag","Value":"b24=","ModifyIndex":7}]`)
	}))
	defer srv.Close()
	cfg := api.DefaultConfig()
	cfg.Address = srv.URL
	client, err := api.NewClient(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx, cancel := context.WithCancel(context.Background())
	ch, wait := api.WatchChan(ctx, nil, func(ctx context.Context, q *api.QueryOptions) (*api.KVPair, *api.QueryMeta, error) {
		return client.KV().Get(ctx, "feature/flag", q)
	})
	p := <-ch
	fmt.Printf("%s = %s\n", p.Key, p.Value)
	cancel()
	for range ch { // drained and closed when the watch ends
	}
	fmt.Println(wait())
	// Output:
	// feature/flag = on
	// context canceled
}
