package econnecttest_test

import (
	"errors"
	"testing"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
)

// Store has the method sets of econnect's interfaces, which it cannot
// name: the root package's tests import econnecttest.
var (
	_ econnect.Store  = (*econnecttest.Store)(nil)
	_ econnect.Locker = (*econnecttest.Store)(nil)
)

func TestStoreMissIsErrNotStored(t *testing.T) {
	t.Parallel()
	s := econnecttest.NewStore()
	defer s.Close()
	if _, err := s.Load(t.Context(), "econnect-v1-00"); !errors.Is(err, econnect.ErrNotStored) {
		t.Errorf("Load(missing) error = %v, want econnect.ErrNotStored", err)
	}
}
