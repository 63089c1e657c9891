package mocks

import (
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/mock"
)

// BackOff is a testify mock of github.com/cenkalti/backoff/v4's BackOff
// interface. Set expectations with On, e.g.
//
//	b := new(mocks.BackOff)
//	b.On("NextBackOff").Return(10 * time.Millisecond).Twice()
//	b.On("NextBackOff").Return(backoff.Stop)
//	b.On("Reset").Return()
//	defer b.AssertExpectations(t)
//
// It is safe for concurrent use, as mock.Mock is.
type BackOff struct{ mock.Mock }

var _ backoff.BackOff = (*BackOff)(nil)

// NextBackOff records the call and returns the first value given to Return:
// a time.Duration (backoff.Stop to stop), an int (as nanoseconds), or a
// func() time.Duration that is called to compute it. Any other value panics,
// as does a call without a matching expectation.
func (m *BackOff) NextBackOff() time.Duration {
	args := m.Called()
	switch v := args.Get(0).(type) {
	case time.Duration:
		return v
	case int:
		return time.Duration(v)
	case func() time.Duration:
		return v()
	default:
		panic(fmt.Sprintf("mocks.BackOff: NextBackOff: Return value %v (%T) is not a time.Duration", v, v))
	}
}

// Reset records the call. It panics without a matching expectation.
func (m *BackOff) Reset() { m.Called() }
