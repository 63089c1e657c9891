package resocket

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSilentByDefault(t *testing.T) {
	s, err := newSettings("ws://127.0.0.1:1", Config{})
	require.NoError(t, err)
	assert.Nil(t, s.logger, "no logger: no log arguments are even built")
}
