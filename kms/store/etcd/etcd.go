// Package etcd implements store.Store on an etcd cluster, so that any number
// of stateless keywarden nodes can share one state. Compare-and-swap maps
// onto etcd's per-key Version; a Txn is one etcd transaction, durable once
// the raft quorum has it.
package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keywarden/keywarden/kms/store"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Config locates the cluster.
type Config struct {
	Endpoints   []string
	Prefix      string // namespace for every key, e.g. "/keywarden/"; default "/keywarden/"
	DialTimeout time.Duration
	TLS         *tls.Config
	Username    string
	Password    string
	// AllowInsecureHTTP lets plain http:// reach a host other than
	// loopback (see CheckEndpoints).
	AllowInsecureHTTP bool
}

// Store is a store.Store on etcd.
type Store struct {
	cli    *clientv3.Client
	prefix string
	closed atomic.Bool
}

var _ store.Store = (*Store)(nil)

// Open connects and checks the cluster answers within DialTimeout.
func Open(cfg Config) (*Store, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd store: no endpoints")
	}
	if err := CheckEndpoints(cfg.Endpoints, cfg.TLS != nil, cfg.AllowInsecureHTTP); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/keywarden/"
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: cfg.Endpoints, DialTimeout: cfg.DialTimeout, TLS: cfg.TLS,
		Username: cfg.Username, Password: cfg.Password, Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd store: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DialTimeout)
	defer cancel()
	if _, err := cli.Get(ctx, cfg.Prefix+"\x00probe"); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd store: cluster %s does not answer: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return &Store{cli: cli, prefix: cfg.Prefix}, nil
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	if err := s.check(ctx); err != nil {
		return store.KV{}, err
	}
	resp, err := s.cli.Get(ctx, s.prefix+key)
	if err != nil {
		return store.KV{}, s.wrap(err)
	}
	if len(resp.Kvs) == 0 {
		return store.KV{}, store.ErrNotFound
	}
	kv := resp.Kvs[0]
	return store.KV{Key: key, Value: kv.Value, Version: kv.Version}, nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix, after string, limit int) ([]store.KV, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	full := s.prefix + prefix
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(full)),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
	if prefix == "" && s.prefix == "" {
		opts[0] = clientv3.WithFromKey()
	}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	resp, err := s.cli.Get(ctx, full+after, opts...)
	if err != nil {
		return nil, s.wrap(err)
	}
	out := make([]store.KV, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, store.KV{Key: string(kv.Key[len(s.prefix):]), Value: kv.Value, Version: kv.Version})
	}
	return out, nil
}

// Txn implements store.Store.
func (s *Store) Txn(ctx context.Context, cmps []store.Cmp, ops []store.Op) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	ifs := make([]clientv3.Cmp, 0, len(cmps))
	for _, c := range cmps {
		if c.Key == "" || c.Version < 0 {
			return fmt.Errorf("etcd store: invalid compare on %q", c.Key)
		}
		ifs = append(ifs, clientv3.Compare(clientv3.Version(s.prefix+c.Key), "=", c.Version))
	}
	thens := make([]clientv3.Op, 0, len(ops))
	for _, op := range ops {
		if op.Key == "" {
			return errors.New("etcd store: empty key")
		}
		if op.Delete {
			thens = append(thens, clientv3.OpDelete(s.prefix+op.Key))
		} else {
			thens = append(thens, clientv3.OpPut(s.prefix+op.Key, string(op.Value)))
		}
	}
	resp, err := s.cli.Txn(ctx).If(ifs...).Then(thens...).Commit()
	if err != nil {
		return s.wrap(err)
	}
	if !resp.Succeeded {
		return store.ErrConflict
	}
	return nil
}

func (s *Store) wrap(err error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if unavailable(err) {
		return fmt.Errorf("etcd store: %w: %w", store.ErrUnavailable, err)
	}
	if noSpace(err) { // the cluster's quota alarm: writes resume after compaction and defrag
		return fmt.Errorf("etcd store: %w: %w", store.ErrFull, err)
	}
	return fmt.Errorf("etcd store: %w", err)
}

// unavailable tells a cluster that cannot answer now (no leader, a leader
// change, no member reachable, the request's time out) from other errors.
func unavailable(err error) bool {
	var ee rpctypes.EtcdError
	switch {
	case errors.As(err, &ee):
		return ee.Code() == codes.Unavailable || ee.Code() == codes.DeadlineExceeded
	case errors.Is(err, context.DeadlineExceeded):
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// noSpace tells etcd's "database space exceeded" (the backend quota's
// NOSPACE alarm), which refuses every write until an operator compacts,
// defragments and disarms the alarm.
func noSpace(err error) bool {
	return errors.Is(err, rpctypes.ErrNoSpace) || errors.Is(err, rpctypes.ErrGRPCNoSpace) ||
		strings.Contains(err.Error(), rpctypes.ErrGRPCNoSpace.Error())
}

// Close implements store.Store.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return store.ErrClosed
	}
	return s.cli.Close()
}
