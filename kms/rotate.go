package kms

import (
	"context"
	"errors"
	"fmt"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms/store"
)

// RotateMaster re-wraps every project KEK from oldMaster to newMaster;
// payload envelopes are not touched, so the cost is one unwrap and one wrap
// per project. A KEK already under newMaster is left as it is, so an
// interrupted rotation is finished by running it again. It returns how many
// project KEKs are now under newMaster.
func RotateMaster(ctx context.Context, st store.Store, oldMaster, newMaster crypto.MasterKey) (int, error) {
	kvs, err := st.List(ctx, kekPrefix(), "", 0)
	if err != nil {
		return 0, fmt.Errorf("rotate: listing project keys: %w", err)
	}
	n := 0
	for _, kv := range kvs {
		project, err := kekProject(kv.Key)
		if err != nil {
			return n, fmt.Errorf("rotate: bad key %q: %w", kv.Key, err)
		}
		for {
			wrapped, err := crypto.RewrapKEK(ctx, oldMaster, newMaster, project, kv.Value)
			if err != nil {
				return n, fmt.Errorf("rotate: project %q: %w", project, err)
			}
			err = st.Txn(ctx, []store.Cmp{{Key: kv.Key, Version: kv.Version}}, []store.Op{store.Put(kv.Key, wrapped)})
			if errors.Is(err, store.ErrConflict) { // changed under us: take the new value
				if kv, err = st.Get(ctx, kv.Key); err != nil {
					return n, fmt.Errorf("rotate: project %q: %w", project, err)
				}
				continue
			}
			if err != nil {
				return n, fmt.Errorf("rotate: project %q: %w", project, err)
			}
			break
		}
		n++
	}
	return n, nil
}

// ForeignKEKs counts, by master key ID, the project KEKs that master did not
// wrap: what an interrupted rotation or migration left behind. A server
// started with such KEKs would fail every request of those projects.
func ForeignKEKs(ctx context.Context, st store.Store, master crypto.MasterKey) (map[string]int, error) {
	kvs, err := st.List(ctx, kekPrefix(), "", 0)
	if err != nil {
		return nil, fmt.Errorf("listing project keys: %w", err)
	}
	foreign := map[string]int{}
	for _, kv := range kvs {
		id, err := crypto.WrappedKEKMasterID(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("project key %q: %w", kv.Key, err)
		}
		if id != master.ID() {
			foreign[id]++
		}
	}
	return foreign, nil
}
