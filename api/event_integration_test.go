package api_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

// epEventSeen waits until the agent's event list holds the event id.
func epEventSeen(t *testing.T, c *api.Client, name, id string) *api.UserEvent {
	t.Helper()
	var got *api.UserEvent
	epEventually(t, 30*time.Second, func() error {
		events, _, err := c.Event().List(t.Context(), name, nil)
		if err != nil {
			return err
		}
		for _, e := range events {
			if e.ID == id {
				got = e
				return nil
			}
		}
		return errors.New("event " + id + " not seen yet")
	})
	return got
}

func TestEventFireListIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	name := epName(t, "")

	fired, _, err := c.Event().Fire(ctx, &api.UserEvent{Name: name, Payload: []byte("v1.2.3")}, nil)
	require.NoError(t, err)
	require.NotEmpty(t, fired.ID)
	assert.Equal(t, name, fired.Name)
	assert.Equal(t, []byte("v1.2.3"), fired.Payload)
	assert.NotZero(t, fired.Version)

	got := epEventSeen(t, c, name, fired.ID)
	assert.Equal(t, []byte("v1.2.3"), got.Payload)
	assert.NotZero(t, got.LTime)

	// The list's index is derived from the last event's ID.
	events, meta, err := c.Event().List(ctx, name, nil)
	require.NoError(t, err)
	require.NotEmpty(t, events)
	assert.Equal(t, api.EventIDToIndex(events[len(events)-1].ID), meta.LastIndex)

	// Without a name, every event is listed.
	all, _, err := c.Event().List(ctx, "", nil)
	require.NoError(t, err)
	var found bool
	for _, e := range all {
		found = found || e.ID == fired.ID
	}
	assert.True(t, found)

	// Payload-less event.
	empty, _, err := c.Event().Fire(ctx, &api.UserEvent{Name: name}, nil)
	require.NoError(t, err)
	assert.Empty(t, epEventSeen(t, c, name, empty.ID).Payload)

	// Too big for gossip.
	_, _, err = c.Event().Fire(ctx, &api.UserEvent{Name: name, Payload: make([]byte, 1024)}, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Body, "exceeds configured limit")
}

func TestEventFiltersIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	self, _, err := c.Agent().Self(ctx, nil)
	require.NoError(t, err)
	name := epName(t, "")
	svc := epName(t, "svc")
	epRegister(t, c, &api.AgentServiceRegistration{Name: svc, Port: 1, Tags: []string{"blue"}})

	// Filtered out by node: the agent drops the event on receipt.
	other, _, err := c.Event().Fire(ctx, &api.UserEvent{Name: name, NodeFilter: "^no-such-node$"}, nil)
	require.NoError(t, err)
	// Matching node, service and tag: the agent keeps it.
	kept, _, err := c.Event().Fire(ctx, &api.UserEvent{
		Name: name, NodeFilter: "^" + self.Config.NodeName + "$", ServiceFilter: "^" + svc + "$", TagFilter: "^blue$",
	}, nil)
	require.NoError(t, err)
	got := epEventSeen(t, c, name, kept.ID)
	assert.Equal(t, "^blue$", got.TagFilter)

	events, _, err := c.Event().List(ctx, name, nil)
	require.NoError(t, err)
	for _, e := range events {
		assert.NotEqual(t, other.ID, e.ID, "the node-filtered event was dropped")
	}
}

func TestEventListBlockingIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	name := epName(t, "")
	first, _, err := c.Event().Fire(ctx, &api.UserEvent{Name: name}, nil)
	require.NoError(t, err)
	epEventSeen(t, c, name, first.ID)
	_, meta, err := c.Event().List(ctx, name, nil)
	require.NoError(t, err)

	type result struct {
		events []*api.UserEvent
		meta   *api.QueryMeta
		err    error
	}
	done := make(chan result, 1)
	go func() {
		e, m, err := c.Event().List(ctx, name, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 30 * time.Second})
		done <- result{e, m, err}
	}()
	time.Sleep(200 * time.Millisecond)
	second, _, err := c.Event().Fire(ctx, &api.UserEvent{Name: name}, nil)
	require.NoError(t, err)
	select {
	case r := <-done:
		require.NoError(t, r.err)
		require.NotEmpty(t, r.events)
		assert.Equal(t, second.ID, r.events[len(r.events)-1].ID)
		assert.Equal(t, api.EventIDToIndex(second.ID), r.meta.LastIndex)
	case <-time.After(40 * time.Second):
		t.Fatal("blocking list did not return")
	}

	// A blocking list with a short wait and no new event returns the same
	// index when the wait is over.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	_, m2, err := c.Event().List(wctx, name, &api.QueryOptions{WaitIndex: api.EventIDToIndex(second.ID), WaitTime: time.Second})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond)
	assert.Equal(t, api.EventIDToIndex(second.ID), m2.LastIndex)
}
