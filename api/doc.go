// Package api is a client for Consul's HTTP API (Consul 1.14 to 1.16).
//
// It only moves bytes: every public endpoint has a typed method, and the
// coordination primitives of consulkit (session, lock, election, semaphore,
// ttlcheck) are built from what this package exports, so callers can build
// the same things.
//
// # Client
//
// NewClient takes a Config: DefaultConfig for a local agent at
// 127.0.0.1:8500, or ConfigFromEnv for the CONSUL_* variables the consul
// command reads (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE,
// CONSUL_HTTP_AUTH, CONSUL_HTTP_SSL, CONSUL_HTTP_SSL_VERIFY, CONSUL_CACERT,
// CONSUL_CAPATH, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY,
// CONSUL_TLS_SERVER_NAME, CONSUL_NAMESPACE, CONSUL_PARTITION). Addresses may
// be host:port, http://, https:// or unix:///path. NewClient never modifies
// the Config it is given. A Client is safe for concurrent use and keeps
// enough idle connections that many parked blocking queries do not starve
// other requests.
//
// # Method shape
//
// Endpoint groups are cheap handles on the client, each with its own
// methods:
//
//	kv         c.KV()              keys and values, CAS, acquire and release
//	txn        c.Txn()             atomic transactions over KV, nodes, services and checks
//	session    c.Session()         sessions: create, renew, destroy, list
//	agent      c.Agent()           the local agent: services, checks, TTL updates, members
//	catalog    c.Catalog()         nodes and services of the datacenter
//	health     c.Health()          health checks and healthy instances
//	coordinate c.Coordinate()      network coordinates
//	event      c.Event()           user events
//	status     c.Status()          Raft leader and peers
//	acl        c.ACL()             tokens, policies, roles, auth methods, binding rules
//	query      c.Query()           prepared queries
//	operator   c.Operator()        Raft, autopilot, keyring, usage
//	snapshot   c.Snapshot()        saving and restoring the servers' state
//	config     c.ConfigEntries()   config entries (service-defaults, proxy-defaults, ...)
//	connect    c.Connect()         the Connect CA and intentions
//	discovery  c.DiscoveryChain()  compiled discovery chains
//	peering    c.Peerings()        cluster peering
//
// Every call takes a context.Context first. Reads take a *QueryOptions (nil
// for none) and return (value, *QueryMeta, error); writes take a
// *WriteOptions and return (..., *WriteMeta, error). The options carry the
// datacenter, token, namespace and partition of one request; the Config
// gives the defaults.
//
// # Errors
//
// Bad input fails before any request with a *ValidationError naming the
// field; it matches ErrInvalid. An answer outside 2xx is a *StatusError
// holding the method, path, status code and up to 4 KiB of the body; match
// it with errors.Is against ErrPermissionDenied, ErrACLNotFound,
// ErrRateLimited, ErrNoLeader and ErrNotFound. A transaction Consul rolls
// back is a *TxnError listing the failed operations. IsRetryable tells
// whether repeating a call may help (network errors, 429, 5xx), by type and
// status rather than by text. A cancelled context returns ctx.Err().
//
// Reading one object that does not exist returns a nil value and no error
// (KV.Get of a missing key is (nil, meta, nil), with a meta whose LastIndex
// can start a blocking query); each method's documentation says what a 404
// means for it.
//
// # Blocking queries
//
// Setting QueryOptions.WaitIndex (or WaitHash on the agent endpoints that
// use content hashes) makes a read block until the result changes or
// WaitTime passes; pass QueryMeta.LastIndex back as the next WaitIndex.
// Consul caps WaitTime at 10 minutes, and the client bounds each blocking
// request at its wait plus wait/16 plus some slack, so a dead connection
// cannot park a caller forever; a request cut off that way is retryable.
//
// Watch and WatchChan run the loop with Consul's rules (NextWaitIndex): an
// index that goes backwards resets the loop (the next read does not block
// and fetches a fresh index), an index of 0 from Consul is sent back as 1 so
// that the read still blocks, retryable errors are retried with jittered
// backoff, other errors end the watch, and a blocking read that wakes
// without a change is rate-limited.
package api
