package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const connectRootsJSON = `{
    "ActiveRootID": "9b:a4:6d:13",
    "TrustDomain": "162b8817-c261-3f7d-fcf0-e8f062f81847.consul",
    "Roots": [
        {
            "ID": "9b:a4:6d:13",
            "Name": "Consul CA Primary Cert",
            "SerialNumber": 7,
            "SigningKeyID": "0d:1f:3e:7e",
            "ExternalTrustDomain": "162b8817-c261-3f7d-fcf0-e8f062f81847",
            "NotBefore": "2026-11-27T09:57:30Z",
            "NotAfter": "2036-11-24T09:57:30Z",
            "RootCert": "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n",
            "IntermediateCerts": null,
            "Active": true,
            "PrivateKeyType": "ec",
            "PrivateKeyBits": 256,
            "CreateIndex": 8,
            "ModifyIndex": 8
        }
    ]
}`

const connectIntentionJSON = `{
    "CreatedAt": "2026-11-27T10:03:08.867834773Z",
    "UpdatedAt": "2026-11-27T10:03:08.867834773Z",
    "ID": "a179b178-8b3a-19d1-e792-ee69f641a249",
    "Description": "d",
    "SourceNS": "default",
    "SourceName": "a",
    "DestinationNS": "default",
    "DestinationName": "b",
    "SourceType": "consul",
    "Action": "allow",
    "Meta": {"k": "v"},
    "Precedence": 9,
    "Hash": "CDk/cuAfZ1f5RwAANx0sjBz599/QBYzlRQ9DdMlj2aU=",
    "CreateIndex": 26,
    "ModifyIndex": 26
}`

func checkConnectIntention(t *testing.T, ixn *Intention) {
	t.Helper()
	require.NotNil(t, ixn)
	assert.Equal(t, "a179b178-8b3a-19d1-e792-ee69f641a249", ixn.ID)
	assert.Equal(t, "a", ixn.SourceName)
	assert.Equal(t, "b", ixn.DestinationName)
	assert.Equal(t, "default", ixn.SourceNS)
	assert.Equal(t, IntentionSourceConsul, ixn.SourceType)
	assert.Equal(t, IntentionActionAllow, ixn.Action)
	assert.Equal(t, 9, ixn.Precedence)
	assert.Equal(t, map[string]string{"k": "v"}, ixn.Meta)
	assert.Equal(t, 2026, ixn.CreatedAt.Year())
	assert.Equal(t, uint64(26), ixn.ModifyIndex)
}

func TestConnectCARoots(t *testing.T) {
	c, f := newTokenFake(t, fakeReply{Body: connectRootsJSON, Header: map[string]string{"X-Consul-Index": "8"}})
	roots, meta, err := c.Connect().CARoots(context.Background(), &QueryOptions{WaitIndex: 5, WaitTime: time.Second})
	require.NoError(t, err)
	req := f.last(t)
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/v1/connect/ca/roots", req.RawPath)
	assert.Equal(t, "5", req.Query.Get("index"))
	assert.Equal(t, "1s", req.Query.Get("wait"))
	assert.Equal(t, fakeToken, req.Header.Get("X-Consul-Token"))
	assert.Equal(t, uint64(8), meta.LastIndex)
	assert.Equal(t, "9b:a4:6d:13", roots.ActiveRootID)
	assert.Equal(t, "162b8817-c261-3f7d-fcf0-e8f062f81847.consul", roots.TrustDomain)
	require.Len(t, roots.Roots, 1)
	r := roots.Roots[0]
	assert.Equal(t, uint64(7), r.SerialNumber)
	assert.Equal(t, time.Date(2036, 11, 24, 9, 57, 30, 0, time.UTC), r.NotAfter)
	assert.Contains(t, r.RootCert, "BEGIN CERTIFICATE")
	assert.Equal(t, 256, r.PrivateKeyBits)
	assert.Same(t, r, roots.Active())
	assert.Nil(t, (*CARootList)(nil).Active())
}

func TestConnectCARootsPEM(t *testing.T) {
	pem := "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
	c, f := newTokenFake(t, fakeReply{Body: pem, Header: map[string]string{"Content-Type": "application/pem-certificate-chain", "X-Consul-Index": "8"}})
	got, meta, err := c.Connect().CARootsPEM(context.Background(), nil)
	require.NoError(t, err)
	assert.Equal(t, pem, got)
	assert.Equal(t, uint64(8), meta.LastIndex)
	req := f.last(t)
	assert.Equal(t, "/v1/connect/ca/roots", req.RawPath)
	assert.Equal(t, "true", req.Query.Get("pem"))
}

func TestConnectCAConfig(t *testing.T) {
	t.Run("get", func(t *testing.T) {
		c, f := newTokenFake(t, fakeReply{Body: `{"Provider":"consul","Config":{"IntermediateCertTTL":"8760h","LeafCertTTL":"72h","RootCertTTL":"87600h"},"State":null,"ForceWithoutCrossSigning":false,"CreateIndex":5,"ModifyIndex":9}`})
		conf, _, err := c.Connect().CAGetConfig(context.Background(), &QueryOptions{Datacenter: "dc1"})
		require.NoError(t, err)
		req := f.last(t)
		assert.Equal(t, http.MethodGet, req.Method)
		assert.Equal(t, "/v1/connect/ca/configuration", req.RawPath)
		assert.Equal(t, "dc1", req.Query.Get("dc"))
		assert.Equal(t, "consul", conf.Provider)
		assert.Equal(t, "72h", conf.Config["LeafCertTTL"])
		assert.Nil(t, conf.State)
		assert.Equal(t, uint64(9), conf.ModifyIndex)
	})
	t.Run("set", func(t *testing.T) {
		c, f := newTokenFake(t, fakeReply{})
		_, err := c.Connect().CASetConfig(context.Background(), &CAConfig{Provider: "consul", Config: map[string]any{"LeafCertTTL": "24h"}}, &WriteOptions{Token: "op"})
		require.NoError(t, err)
		req := f.last(t)
		assert.Equal(t, http.MethodPut, req.Method)
		assert.Equal(t, "/v1/connect/ca/configuration", req.RawPath)
		assert.Equal(t, "op", req.Header.Get("X-Consul-Token"))
		assert.JSONEq(t, `{"Provider":"consul","Config":{"LeafCertTTL":"24h"},"ForceWithoutCrossSigning":false}`, string(req.Body))
	})
	t.Run("set read-only state", func(t *testing.T) {
		c, _ := newTokenFake(t, fakeReply{Status: 400, Body: "Provider State is read-only. It must be omitted or identical to the current value"})
		_, err := c.Connect().CASetConfig(context.Background(), &CAConfig{Provider: "consul", State: map[string]string{"a": "b"}}, nil)
		var se *StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 400, se.Code)
		assert.False(t, IsRetryable(err))
	})
	t.Run("set validation", func(t *testing.T) {
		c, f := newTokenFake(t, fakeReply{})
		_, err := c.Connect().CASetConfig(context.Background(), nil, nil)
		assert.ErrorIs(t, err, ErrInvalid)
		_, err = c.Connect().CASetConfig(context.Background(), &CAConfig{}, nil)
		assert.ErrorIs(t, err, ErrInvalid)
		assert.Zero(t, f.count())
	})
}

func TestConnectIntentionsList(t *testing.T) {
	c, f := newTokenFake(t, fakeReply{Body: `[` + connectIntentionJSON + `]`, Header: map[string]string{"X-Consul-Index": "26"}})
	list, meta, err := c.Connect().Intentions(context.Background(), &QueryOptions{Filter: `SourceName == "a"`})
	require.NoError(t, err)
	req := f.last(t)
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/v1/connect/intentions", req.RawPath)
	assert.Equal(t, `SourceName == "a"`, req.Query.Get("filter"))
	assert.Equal(t, uint64(26), meta.LastIndex)
	require.Len(t, list, 1)
	checkConnectIntention(t, list[0])
}

func TestConnectIntentionCreate(t *testing.T) {
	c, f := newTokenFake(t, fakeReply{Body: `{"ID":"a179b178-8b3a-19d1-e792-ee69f641a249"}`})
	id, _, err := c.Connect().IntentionCreate(context.Background(), &Intention{SourceName: "a", DestinationName: "b", Action: IntentionActionAllow, Meta: map[string]string{"k": "v"}}, nil)
	require.NoError(t, err)
	assert.Equal(t, "a179b178-8b3a-19d1-e792-ee69f641a249", id)
	req := f.last(t)
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/v1/connect/intentions", req.RawPath)
	assert.JSONEq(t, `{"SourceName":"a","DestinationName":"b","Action":"allow","Meta":{"k":"v"}}`, string(req.Body))
}

func TestConnectIntentionByID(t *testing.T) {
	const id = "a179b178-8b3a-19d1-e792-ee69f641a249"
	t.Run("get", func(t *testing.T) {
		c, f := newTokenFake(t, fakeReply{Body: connectIntentionJSON})
		ixn, _, err := c.Connect().IntentionGet(context.Background(), id, nil)
		require.NoError(t, err)
		checkConnectIntention(t, ixn)
		req := f.last(t)
		assert.Equal(t, http.MethodGet, req.Method)
		assert.Equal(t, "/v1/connect/intentions/"+id, req.RawPath)
	})
	t.Run("get missing", func(t *testing.T) {
		c, _ := newTokenFake(t, fakeReply{Status: 404, Body: "Intention not found"})
		ixn, meta, err := c.Connect().IntentionGet(context.Background(), id, nil)
		require.NoError(t, err)
		assert.Nil(t, ixn)
		assert.NotNil(t, meta)
	})
	t.Run("get bad id", func(t *testing.T) {
		c, _ := newTokenFake(t, fakeReply{Status: 400, Body: "UUID must be 36 characters"})
		_, _, err := c.Connect().IntentionGet(context.Background(), "nope", nil)
		var se *StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 400, se.Code)
	})
	t.Run("update", func(t *testing.T) {
		c, f := newTokenFake(t, fakeReply{Body: `{"ID":"` + id + `"}`})
		_, err := c.Connect().IntentionUpdate(context.Background(), &Intention{ID: id, SourceName: "a", DestinationName: "b", Action: IntentionActionDeny}, nil)
		require.NoError(t, err)
		req := f.last(t)
		assert.Equal(t, http.MethodPut, req.Method)
		assert.Equal(t, "/v1/connect/intentions/"+id, req.RawPath)
		assert.JSONEq(t, `{"ID":"`+id+`","SourceName":"a","DestinationName":"b","Action":"deny"}`, string(req.Body))
	})
	t.Run("delete", func(t *testing.T) {
		c, f := newTokenFake(t, fakeReply{Body: `true`})
		_, err := c.Connect().IntentionDelete(context.Background(), id, &WriteOptions{Token: "t"})
		require.NoError(t, err)
		req := f.last(t)
		assert.Equal(t, http.MethodDelete, req.Method)
		assert.Equal(t, "/v1/connect/intentions/"+id, req.RawPath)
		assert.Equal(t, "t", req.Header.Get("X-Consul-Token"))
	})
	t.Run("delete missing", func(t *testing.T) {
		c, _ := newTokenFake(t, fakeReply{Status: 500, Body: "Cannot delete non-existent intention: '" + id + "'"})
		_, err := c.Connect().IntentionDelete(context.Background(), id, nil)
		var se *StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 500, se.Code)
	})
}

func TestConnectIntentionExact(t *testing.T) {
	t.Run("get", func(t *testing.T) {
		c, f := newTokenFake(t, fakeReply{Body: connectIntentionJSON})
		ixn, _, err := c.Connect().IntentionGetExact(context.Background(), "a", "ns1/b", &QueryOptions{Consistency: ConsistencyStale})
		require.NoError(t, err)
		checkConnectIntention(t, ixn)
		req := f.last(t)
		assert.Equal(t, http.MethodGet, req.Method)
		assert.Equal(t, "/v1/connect/intentions/exact", req.RawPath)
		assert.Equal(t, "a", req.Query.Get("source"))
		assert.Equal(t, "ns1/b", req.Query.Get("destination"))
		assert.True(t, req.Query.Has("stale"))
	})
	t.Run("get missing", func(t *testing.T) {
		c, _ := newTokenFake(t, fakeReply{Status: 404, Body: "Intention not found"})
		ixn, _, err := c.Connect().IntentionGetExact(context.Background(), "a", "b", nil)
		require.NoError(t, err)
		assert.Nil(t, ixn)
	})
	upserts := []struct {
		name            string
		ixn             *Intention
		wantSource      string
		wantDestination string
	}{
		{name: "plain", ixn: &Intention{SourceName: "c", DestinationName: "z", Action: IntentionActionDeny}, wantSource: "c", wantDestination: "z"},
		{name: "namespaced", ixn: &Intention{SourceNS: "ns1", SourceName: "c", DestinationNS: "ns2", DestinationName: "z", Action: IntentionActionDeny}, wantSource: "ns1/c", wantDestination: "ns2/z"},
		{name: "partitioned", ixn: &Intention{SourcePartition: "p1", SourceName: "c", DestinationPartition: "p2", DestinationNS: "ns", DestinationName: "z", Action: IntentionActionDeny}, wantSource: "p1/default/c", wantDestination: "p2/ns/z"},
	}
	for _, tt := range upserts {
		t.Run("upsert "+tt.name, func(t *testing.T) {
			c, f := newTokenFake(t, fakeReply{Body: `true`})
			_, err := c.Connect().IntentionUpsert(context.Background(), tt.ixn, &WriteOptions{Datacenter: "dc3"})
			require.NoError(t, err)
			req := f.last(t)
			assert.Equal(t, http.MethodPut, req.Method)
			assert.Equal(t, "/v1/connect/intentions/exact", req.RawPath)
			assert.Equal(t, tt.wantSource, req.Query.Get("source"))
			assert.Equal(t, tt.wantDestination, req.Query.Get("destination"))
			assert.Equal(t, "dc3", req.Query.Get("dc"))
			assert.Equal(t, "deny", ceJSON(t, req.Body)["Action"])
		})
	}
	t.Run("upsert with ID", func(t *testing.T) {
		c, f := newTokenFake(t, fakeReply{Body: `true`})
		_, err := c.Connect().IntentionUpsert(context.Background(), &Intention{ID: "x", SourceName: "a", DestinationName: "b"}, nil)
		assert.ErrorIs(t, err, ErrInvalid)
		assert.Zero(t, f.count())
	})
	t.Run("upsert with a source peer", func(t *testing.T) {
		// The source parameter cannot name a peer, and Consul refuses
		// SourcePeer in the body (400): an intention read with a peer
		// source is refused here instead.
		c, f := newTokenFake(t, fakeReply{Body: `true`})
		_, err := c.Connect().IntentionUpsert(context.Background(), &Intention{SourcePeer: "p1", SourceName: "a", DestinationName: "b", Action: "allow"}, nil)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, "Intention.SourcePeer", ve.Field)
		assert.Zero(t, f.count())
	})
	t.Run("delete", func(t *testing.T) {
		c, f := newTokenFake(t, fakeReply{Body: `true`})
		_, err := c.Connect().IntentionDeleteExact(context.Background(), "c", "z", nil)
		require.NoError(t, err)
		req := f.last(t)
		assert.Equal(t, http.MethodDelete, req.Method)
		assert.Equal(t, "/v1/connect/intentions/exact", req.RawPath)
		assert.Equal(t, "c", req.Query.Get("source"))
		assert.Equal(t, "z", req.Query.Get("destination"))
	})
}

func TestConnectIntentionMatch(t *testing.T) {
	c, f := newTokenFake(t, fakeReply{Body: `{"b":[` + connectIntentionJSON + `],"other":null}`})
	m, _, err := c.Connect().IntentionMatch(context.Background(), IntentionMatchDestination, []string{"b", "other"}, nil)
	require.NoError(t, err)
	req := f.last(t)
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/v1/connect/intentions/match", req.RawPath)
	assert.Equal(t, "destination", req.Query.Get("by"))
	assert.Equal(t, []string{"b", "other"}, req.Query["name"])
	require.Len(t, m["b"], 1)
	checkConnectIntention(t, m["b"][0])
	assert.Contains(t, m, "other")
	assert.Empty(t, m["other"])
}

func TestConnectIntentionCheck(t *testing.T) {
	for _, allowed := range []bool{true, false} {
		name := "denied"
		body := `{"Allowed": false}`
		if allowed {
			name, body = "allowed", `{"Allowed": true}`
		}
		t.Run(name, func(t *testing.T) {
			c, f := newTokenFake(t, fakeReply{Body: body})
			got, _, err := c.Connect().IntentionCheck(context.Background(), "web", "db", nil)
			require.NoError(t, err)
			assert.Equal(t, allowed, got)
			req := f.last(t)
			assert.Equal(t, http.MethodGet, req.Method)
			assert.Equal(t, "/v1/connect/intentions/check", req.RawPath)
			assert.Equal(t, "web", req.Query.Get("source"))
			assert.Equal(t, "db", req.Query.Get("destination"))
		})
	}
}

func TestConnectValidation(t *testing.T) {
	runInvalidCases(t, []invalidCase{
		{"create nil", func(ctx context.Context, c *Client) error {
			_, _, err := c.Connect().IntentionCreate(ctx, nil, nil)
			return err
		}, "intention"},
		{"create no source", func(ctx context.Context, c *Client) error {
			_, _, err := c.Connect().IntentionCreate(ctx, &Intention{DestinationName: "b"}, nil)
			return err
		}, "Intention.SourceName"},
		{"create no destination", func(ctx context.Context, c *Client) error {
			_, _, err := c.Connect().IntentionCreate(ctx, &Intention{SourceName: "a"}, nil)
			return err
		}, "Intention.DestinationName"},
		{"get no id", func(ctx context.Context, c *Client) error {
			_, _, err := c.Connect().IntentionGet(ctx, "", nil)
			return err
		}, "intention ID"},
		{"update no id", func(ctx context.Context, c *Client) error {
			_, err := c.Connect().IntentionUpdate(ctx, &Intention{SourceName: "a", DestinationName: "b"}, nil)
			return err
		}, "Intention.ID"},
		{"delete no id", func(ctx context.Context, c *Client) error {
			_, err := c.Connect().IntentionDelete(ctx, "", nil)
			return err
		}, "intention ID"},
		{"exact no source", func(ctx context.Context, c *Client) error {
			_, _, err := c.Connect().IntentionGetExact(ctx, "", "b", nil)
			return err
		}, "source"},
		{"exact no destination", func(ctx context.Context, c *Client) error {
			_, err := c.Connect().IntentionDeleteExact(ctx, "a", "", nil)
			return err
		}, "destination"},
		{"match bad by", func(ctx context.Context, c *Client) error {
			_, _, err := c.Connect().IntentionMatch(ctx, "both", []string{"a"}, nil)
			return err
		}, "by"},
		{"match no names", func(ctx context.Context, c *Client) error {
			_, _, err := c.Connect().IntentionMatch(ctx, IntentionMatchSource, nil, nil)
			return err
		}, "names"},
		{"match empty name", func(ctx context.Context, c *Client) error {
			_, _, err := c.Connect().IntentionMatch(ctx, IntentionMatchSource, []string{"a", ""}, nil)
			return err
		}, "name"},
		{"check no source", func(ctx context.Context, c *Client) error {
			_, _, err := c.Connect().IntentionCheck(ctx, "", "b", nil)
			return err
		}, "source"},
	})
}

func TestConnectErrors(t *testing.T) {
	c, _ := newTokenFake(t, fakeReply{Status: 403, Body: "Permission denied"})
	ctx := context.Background()
	_, _, err := c.Connect().CARoots(ctx, nil)
	assert.ErrorIs(t, err, ErrPermissionDenied)
	_, _, err = c.Connect().CAGetConfig(ctx, nil)
	assert.ErrorIs(t, err, ErrPermissionDenied)
	_, _, err = c.Connect().CARootsPEM(ctx, nil)
	assert.ErrorIs(t, err, ErrPermissionDenied)
	_, _, err = c.Connect().Intentions(ctx, nil)
	assert.ErrorIs(t, err, ErrPermissionDenied)
	_, _, err = c.Connect().IntentionCheck(ctx, "a", "b", nil)
	assert.ErrorIs(t, err, ErrPermissionDenied)
	_, err = c.Connect().IntentionUpsert(ctx, &Intention{SourceName: "a", DestinationName: "b", Action: "allow"}, nil)
	assert.ErrorIs(t, err, ErrPermissionDenied)
}
