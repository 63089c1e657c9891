package session_test

import (
	"testing"

	"github.com/resocket/resocket/session"
	"github.com/resocket/resocket/session/internal/storetest"
)

// The Store contract, as session/redisstore's tests run it against Redis.
func TestMemoryStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) session.Store { return session.NewMemoryStore() })
}
