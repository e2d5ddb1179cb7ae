package api

import "context"

// Status is the handle on the /v1/status endpoints.
type Status struct{ c *Client }

// Status returns the handle on the status endpoints.
func (c *Client) Status() *Status { return &Status{c} }

// Leader returns the address (ip:port) of the Raft leader, or "" when there
// is none.
func (s *Status) Leader(ctx context.Context, q *QueryOptions) (string, error) {
	var leader string
	_, err := s.c.query(ctx, "/v1/status/leader", q, &leader)
	return leader, err
}

// Peers returns the addresses of the Raft peers.
func (s *Status) Peers(ctx context.Context, q *QueryOptions) ([]string, error) {
	var peers []string
	_, err := s.c.query(ctx, "/v1/status/peers", q, &peers)
	return peers, err
}
