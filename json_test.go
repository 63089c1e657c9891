package resocket_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

func TestSendJSONAndDecode(t *testing.T) {
	type quote struct {
		Symbol string  `json:"symbol"`
		Price  float64 `json:"price"`
	}
	srv := mocks.NewServer(t, mocks.WithEcho())
	c, events := newClient(t, srv.URL(), resocket.Config{})
	waitConnected(t, c)

	require.NoError(t, c.SendJSON(context.Background(), quote{"ACME", 12.5}))
	m := testkit.WaitEvent[resocket.Message](t, events, 5*time.Second)
	assert.Equal(t, resocket.MessageText, m.Type)
	var got quote
	require.NoError(t, m.DecodeJSON(&got))
	assert.Equal(t, quote{"ACME", 12.5}, got)
}

func TestSendJSONRejectsUnencodable(t *testing.T) {
	srv := mocks.NewServer(t)
	c, _ := newClient(t, srv.URL(), resocket.Config{})
	err := c.SendJSON(context.Background(), func() {})
	require.Error(t, err)
	assert.Zero(t, c.Stats().Buffered, "nothing is sent or buffered")
}

func TestDecodeJSONError(t *testing.T) {
	var v map[string]any
	assert.Error(t, resocket.Message{Data: []byte("{")}.DecodeJSON(&v))
}
