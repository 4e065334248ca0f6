package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keywarden/keywarden/crypto"
)

// openMaster opens the configured master key: the local root key file
// (created on first use), or a Vault Transit key, checked with one
// wrap/unwrap so that a wrong address, token or key stops start-up here
// rather than at the first request of a new project.
func openMaster(cfg config, log *slog.Logger) (crypto.MasterKey, error) {
	if cfg.MasterKey.Type == "transit" {
		return openTransit(cfg)
	}
	root, created, err := crypto.LoadOrCreateRootKey(cfg.RootKey)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created root key", "path", cfg.RootKey, "id", root.ID())
	}
	return root, nil
}

func openTransit(cfg config) (*crypto.TransitKey, error) {
	k, err := crypto.NewTransitKey(cfg.MasterKey.Transit)
	if err != nil {
		return nil, fmt.Errorf("master_key.transit: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := k.Check(ctx); errors.Is(err, crypto.ErrMasterUnavailable) {
		return nil, fmt.Errorf("master key %s: Vault at %s does not answer (down, unreachable or sealed), and no project key can be opened without it; start or unseal Vault, or fix master_key.transit.address: %w",
			k.ID(), cfg.MasterKey.Transit.Address, err)
	} else if err != nil {
		return nil, fmt.Errorf("master key %s at %s: %w", k.ID(), cfg.MasterKey.Transit.Address, err)
	}
	return k, nil
}
