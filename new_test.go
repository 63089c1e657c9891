package resocket

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket/mocks"
)

func TestNewRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"", "http://x", "https://x", "ws://", "wss://", "ftp://h", "::bad", "ws://:8080", "127.0.0.1:80"} {
		t.Run(url, func(t *testing.T) {
			c, err := New(url, Config{})
			assert.ErrorIs(t, err, ErrInvalidURL)
			assert.Nil(t, c)
			c, err = Dial(context.Background(), url, Config{})
			assert.ErrorIs(t, err, ErrInvalidURL)
			assert.Nil(t, c)
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	cases := map[string]Config{
		"EventBuffer -1":      {EventBuffer: -1},
		"PongTimeout -1":      {PongTimeout: -1},
		"CloseTimeout -1":     {CloseTimeout: -1},
		"ReadLimit -1":        {ReadLimit: -1},
		"header name space":   {Header: http.Header{"bad name": {"v"}}},
		"header name colon":   {Header: http.Header{"Bad:Name": {"v"}}},
		"header name empty":   {Header: http.Header{"": {"v"}}},
		"handshake header":    {Header: http.Header{"Sec-Websocket-Key": {"v"}}},
		"Backoff returns nil": {Backoff: func() backoff.BackOff { return nil }},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := New("ws://127.0.0.1:1", cfg)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.Nil(t, c)
			c, err = Dial(context.Background(), "ws://127.0.0.1:1", cfg)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.Nil(t, c)
		})
	}
}

func TestNewAcceptsDocumentedSpecialValues(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	// Negative SendBuffer and PingInterval mean "off", not invalid.
	cfg := fastConfig()
	cfg.SendBuffer = -1
	cfg.PingInterval = -1
	_, ev, _ := connect(t, srv, cfg)
	assert.NotZero(t, ev.ConnID)
}

func TestNewNeverBlocks(t *testing.T) {
	t.Parallel()
	stall := mocks.NewStallServer(t)
	var c *Client
	returnsWithin(t, time.Second, "New against a stalling server", func() {
		var err error
		c, err = New(stall.URL(), Config{})
		assert.NoError(t, err)
	})
	require.NotNil(t, c)
	t.Cleanup(c.Terminate)
	require.True(t, stall.WaitAccepted(1, waitFor), "the client never dialed")
	assert.Equal(t, StateConnecting, c.State())
	assertConnecting(t, nextEvent(t, c, waitFor), 1)
}

func TestNewRejectsBadExtraURL(t *testing.T) {
	_, err := New("ws://127.0.0.1:1", Config{URLs: []string{"http://127.0.0.1:2"}})
	assert.ErrorIs(t, err, ErrInvalidURL)
}
