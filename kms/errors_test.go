package kms

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms/store"
)

// Backend failures that pass with time are refusals to retry (REST 503,
// KMIP Operation Failed), worded for the caller; anything else is internal.
func TestInternalKinds(t *testing.T) {
	for _, tc := range []struct {
		cause error
		kind  Kind
		msg   string
	}{
		{fmt.Errorf("etcd: %w", store.ErrUnavailable), KindUnavailable, "the store is unavailable"},
		{fmt.Errorf("%w: %w", store.ErrFull, syscall.ENOSPC), KindUnavailable, "the store is full"},
		{fmt.Errorf("crypto: wrapping KEK: transit: dial: %w", crypto.ErrMasterUnavailable), KindUnavailable, "the master key (Vault Transit) is unavailable"},
		{errors.New("transit: HTTP 403: permission denied"), KindInternal, "internal error"},
		{syscall.ENOSPC, KindInternal, "internal error"}, // not from the store: not claimed as "full"
	} {
		err := internal("seal", tc.cause)
		if KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.msg) || !errors.Is(err, tc.cause) {
			t.Errorf("internal(%v) = kind %v %q", tc.cause, KindOf(err), err)
		}
	}
}
