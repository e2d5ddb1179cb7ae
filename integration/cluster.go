package integration

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/consulkit/consulkit/api"
)

// Cluster is a set of Consul servers that elect a leader among themselves.
type Cluster struct {
	Servers []*Agent
	Mode    Mode

	closeNet func()
}

// StartCluster starts n servers and waits until they have elected a leader
// that all of them know. The caller must Close it.
func StartCluster(ctx context.Context, n int) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("integration: cluster of %d servers", n)
	}
	b, err := getBackend(ctx, provisionMode())
	if err != nil {
		return nil, err
	}
	// As for StartAgent: a server that lost its port to someone else exits
	// at once, and the cluster is started again on other ports.
	for attempt := 1; ; attempt++ {
		cl, err := b.startCluster(ctx, n)
		if err != nil {
			return nil, err
		}
		_, err = cl.WaitLeader(ctx)
		if err == nil {
			return cl, nil
		}
		logs := ""
		for _, s := range cl.Servers {
			logs += "--- " + s.Name + "\n" + s.node.logs()
		}
		_ = cl.Close(context.WithoutCancel(ctx))
		if !errors.Is(err, errExited) || attempt == 3 {
			return nil, fmt.Errorf("%w\n%s", err, logs)
		}
	}
}

// Client returns a client for server i and fails tb if it cannot.
func (c *Cluster) Client(tb TB, i int) *api.Client {
	tb.Helper()
	return c.Servers[i].Client(tb)
}

// Leader returns the index of the server that server `from` reports as the
// leader.
func (c *Cluster) leaderSeenBy(ctx context.Context, from int) (int, error) {
	cli, err := c.Servers[from].NewClient()
	if err != nil {
		return -1, err
	}
	// Polled many times a second: a connection left idle per call would
	// soon reach Consul's limit per client address (200), after which it
	// refuses every new connection of the test process with 429.
	defer cli.CloseIdleConnections()
	addr, err := cli.Status().Leader(ctx, nil)
	if err != nil {
		return -1, err
	}
	for i, s := range c.Servers {
		if s.node.raftAddr() == addr {
			return i, nil
		}
	}
	return -1, fmt.Errorf("integration: no leader (server %d reports %q)", from, addr)
}

// Leader returns the index of the current leader as seen by the first
// server in `among` (all servers when empty) that answers.
func (c *Cluster) Leader(ctx context.Context, among ...int) (int, error) {
	if len(among) == 0 {
		for i := range c.Servers {
			among = append(among, i)
		}
	}
	var errs []error
	for _, i := range among {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		l, err := c.leaderSeenBy(rctx, i)
		cancel()
		if err == nil {
			return l, nil
		}
		errs = append(errs, err)
	}
	return -1, errors.Join(errs...)
}

// WaitLeader waits until every server in `among` (all when empty) reports
// the same leader, which is one of them, and that leader accepts a write.
func (c *Cluster) WaitLeader(ctx context.Context, among ...int) (int, error) {
	if len(among) == 0 {
		for i := range c.Servers {
			among = append(among, i)
		}
	}
	leader := -1
	err := waitFor(ctx, 90*time.Second, func(ctx context.Context) error {
		for _, i := range among {
			if err := c.Servers[i].node.alive(); err != nil {
				return err
			}
		}
		l := -1
		for _, i := range among {
			li, err := c.leaderSeenBy(ctx, i)
			if err != nil {
				return err
			}
			if l != -1 && li != l {
				return fmt.Errorf("servers disagree on the leader (%d, %d)", l, li)
			}
			l = li
		}
		in := false
		for _, i := range among {
			in = in || i == l
		}
		if !in {
			return fmt.Errorf("leader %d is not among %v", l, among)
		}
		cli, err := c.Servers[l].NewClient()
		if err != nil {
			return err
		}
		defer cli.CloseIdleConnections()
		if _, err := cli.KV().Put(ctx, &api.KVPair{Key: "consulkit/harness/ready", Value: []byte("1")}, nil); err != nil {
			return err
		}
		for _, i := range among {
			if err := c.Servers[i].registered(ctx); err != nil {
				return err
			}
		}
		leader = l
		return nil
	})
	return leader, err
}

// Stop stops server i gracefully; Start brings it back with its data.
func (c *Cluster) Stop(ctx context.Context, i int) error { return c.Servers[i].node.stop(ctx) }

// Start starts server i again.
func (c *Cluster) Start(ctx context.Context, i int) error { return c.Servers[i].node.start(ctx) }

// Kill stops server i abruptly.
func (c *Cluster) Kill(ctx context.Context, i int) error { return c.Servers[i].node.kill(ctx) }

// Pause freezes server i; it answers nothing until Unpause.
func (c *Cluster) Pause(ctx context.Context, i int) error { return c.Servers[i].node.pause(ctx) }

// Unpause resumes server i.
func (c *Cluster) Unpause(ctx context.Context, i int) error { return c.Servers[i].node.unpause(ctx) }

// Disconnect cuts server i off from the other servers; the test process
// can still reach its HTTP API. ErrUnsupported in process mode.
func (c *Cluster) Disconnect(ctx context.Context, i int) error {
	return c.Servers[i].node.disconnect(ctx)
}

// Reconnect undoes Disconnect. It asks server i to join the others at
// once rather than wait for Serf's reconnect interval (30s).
func (c *Cluster) Reconnect(ctx context.Context, i int) error {
	if err := c.Servers[i].node.reconnect(ctx); err != nil {
		return err
	}
	var errs []error
	for j, s := range c.Servers {
		if j == i {
			continue
		}
		if err := c.Servers[i].join(ctx, s.node.serfAddr()); err != nil {
			errs = append(errs, err)
		} else {
			return nil
		}
	}
	return errors.Join(errs...)
}

// Close removes every server and the cluster's network.
func (c *Cluster) Close(ctx context.Context) error {
	var errs []error
	for _, s := range c.Servers {
		errs = append(errs, s.Close(ctx))
	}
	if c.closeNet != nil {
		c.closeNet()
	}
	return errors.Join(errs...)
}
