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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keywarden/keywarden/kms/store"
	"go.etcd.io/etcd/api/v3/mvccpb"
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
	// counters caches counterState by key, so an Add usually needs no read.
	counters sync.Map
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Scanner = (*Store)(nil)
	_ store.Counter = (*Store)(nil)
)

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

// Txn implements store.Store. Add ops become a Put of the counter's new
// value under a compare of its mod revision; when only those compares fail
// (another adder came first), the transaction is sent again with the values
// the failure returned, so adders never see a conflict of their own.
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
	adds := map[string]int64{}
	var addKeys []string
	for _, op := range ops {
		if op.Key == "" {
			return errors.New("etcd store: empty key")
		}
		switch {
		case op.Delete:
			thens = append(thens, clientv3.OpDelete(s.prefix+op.Key))
		case op.Add != 0:
			if _, ok := adds[op.Key]; !ok {
				addKeys = append(addKeys, op.Key)
			}
			adds[op.Key] += op.Add
		default:
			thens = append(thens, clientv3.OpPut(s.prefix+op.Key, string(op.Value)))
		}
	}
	if len(addKeys) == 0 {
		resp, err := s.cli.Txn(ctx).If(ifs...).Then(thens...).Commit()
		if err != nil {
			return s.wrap(err)
		}
		if !resp.Succeeded {
			return store.ErrConflict
		}
		return nil
	}
	// The counters' current values: from the last answer, else read.
	cur := make(map[string]counterState, len(addKeys))
	for _, k := range addKeys {
		if c, ok := s.counters.Load(k); ok {
			cur[k] = c.(counterState)
			continue
		}
		resp, err := s.cli.Get(ctx, s.prefix+k)
		if err != nil {
			return s.wrap(err)
		}
		cur[k] = counterOf(resp.Kvs)
	}
	for {
		ifc, thenc, elsec := slices.Clone(ifs), slices.Clone(thens), []clientv3.Op(nil)
		for _, k := range addKeys {
			c := cur[k]
			ifc = append(ifc, clientv3.Compare(clientv3.ModRevision(s.prefix+k), "=", c.modRev))
			thenc = append(thenc, clientv3.OpPut(s.prefix+k, string(store.EncodeCounter(c.value+adds[k]))))
			elsec = append(elsec, clientv3.OpGet(s.prefix+k))
		}
		resp, err := s.cli.Txn(ctx).If(ifc...).Then(thenc...).Else(elsec...).Commit()
		if err != nil {
			for _, k := range addKeys {
				s.counters.Delete(k)
			}
			return s.wrap(err)
		}
		if resp.Succeeded {
			for _, k := range addKeys {
				s.counters.Store(k, counterState{value: cur[k].value + adds[k], modRev: resp.Header.Revision})
			}
			return nil
		}
		moved := false
		for i, k := range addKeys {
			c := counterOf(resp.Responses[i].GetResponseRange().Kvs)
			s.counters.Store(k, c)
			if c != cur[k] {
				moved = true
			}
			cur[k] = c
		}
		if !moved {
			return store.ErrConflict // the caller's own compares failed
		}
		if err := s.check(ctx); err != nil {
			return err
		}
	}
}

// counterState is a counter as last seen: its value and mod revision (0:
// absent).
type counterState struct {
	value  int64
	modRev int64
}

func counterOf(kvs []*mvccpb.KeyValue) counterState {
	if len(kvs) == 0 {
		return counterState{}
	}
	return counterState{value: store.CounterValue(kvs[0].Value), modRev: kvs[0].ModRevision}
}

// Scan implements store.Scanner, a page of keys and values at a time.
func (s *Store) Scan(ctx context.Context, prefix, after string, fn func(key string, value []byte) bool) error {
	for {
		kvs, err := s.List(ctx, prefix, after, scanPage)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if !fn(kv.Key, kv.Value) {
				return nil
			}
		}
		if len(kvs) < scanPage {
			return nil
		}
		after = kvs[len(kvs)-1].Key[len(prefix):] + "\x00"
	}
}

// Nth implements store.Scanner: keys only, a page at a time. etcd cannot
// skip without sending the keys, so a deep offset costs their transfer.
func (s *Store) Nth(ctx context.Context, prefix, after string, n int) (string, error) {
	if err := s.check(ctx); err != nil {
		return "", err
	}
	full := s.prefix + prefix
	for {
		page := min(n+1, 8192)
		resp, err := s.cli.Get(ctx, full+after, clientv3.WithRange(clientv3.GetPrefixRangeEnd(full)),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithKeysOnly(), clientv3.WithLimit(int64(page)))
		if err != nil {
			return "", s.wrap(err)
		}
		if n < len(resp.Kvs) {
			return string(resp.Kvs[n].Key[len(s.prefix):]), nil
		}
		if len(resp.Kvs) < page {
			return "", nil
		}
		n -= len(resp.Kvs)
		after = string(resp.Kvs[len(resp.Kvs)-1].Key[len(full):]) + "\x00"
	}
}

// Count implements store.Counter: etcd counts the range in its index and
// sends only the number.
func (s *Store) Count(ctx context.Context, prefix string) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	full := s.prefix + prefix
	resp, err := s.cli.Get(ctx, full, clientv3.WithRange(clientv3.GetPrefixRangeEnd(full)), clientv3.WithCountOnly())
	if err != nil {
		return 0, s.wrap(err)
	}
	return resp.Count, nil
}

// scanPage is how many entries Scan reads per request.
const scanPage = 1024

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
