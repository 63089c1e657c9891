package resocket_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

func TestNewRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"", "http://x", "https://x", "ws://", "wss://", "ftp://h", "::bad", "ws://:8080", "127.0.0.1:80"} {
		t.Run(url, func(t *testing.T) {
			c, err := resocket.New(url, resocket.Config{})
			assert.ErrorIs(t, err, resocket.ErrInvalidURL)
			assert.Nil(t, c)
			c, err = resocket.Dial(context.Background(), url, resocket.Config{})
			assert.ErrorIs(t, err, resocket.ErrInvalidURL)
			assert.Nil(t, c)
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	cases := map[string]resocket.Config{
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
			c, err := resocket.New("ws://127.0.0.1:1", cfg)
			assert.ErrorIs(t, err, resocket.ErrInvalidConfig)
			assert.Nil(t, c)
			c, err = resocket.Dial(context.Background(), "ws://127.0.0.1:1", cfg)
			assert.ErrorIs(t, err, resocket.ErrInvalidConfig)
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
	_, _, ev, _ := connect(t, srv, cfg)
	assert.NotZero(t, ev.ConnID)
}

func TestNewNeverBlocks(t *testing.T) {
	t.Parallel()
	stall := mocks.NewStallServer(t)
	var c *resocket.Client
	testkit.ReturnsWithin(t, time.Second, "New against a stalling server", func() {
		var err error
		c, err = resocket.New(stall.URL(), resocket.Config{})
		assert.NoError(t, err)
	})
	require.NotNil(t, c)
	events := testkit.Read(t, c)
	require.True(t, stall.WaitAccepted(1, waitFor), "the client never dialed")
	assert.Equal(t, resocket.StateConnecting, c.State())
	assertConnecting(t, events.Next(t, waitFor), 1)
}

func TestNewRejectsBadExtraURL(t *testing.T) {
	_, err := resocket.New("ws://127.0.0.1:1", resocket.Config{URLs: []string{"http://127.0.0.1:2"}})
	assert.ErrorIs(t, err, resocket.ErrInvalidURL)
}
