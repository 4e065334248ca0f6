package keystone

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// follow polls Keystone's revocation events until ctx ends and drops the
// cached tokens they revoke.
func (v *Validator) follow(ctx context.Context) {
	defer close(v.done)
	t := time.NewTicker(v.poll)
	defer t.Stop()
	var cursor time.Time // Keystone's clock: the latest revoked_at seen
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next, err := v.pollEvents(ctx, cursor)
		if err != nil {
			if !failing && ctx.Err() == nil {
				// Cached tokens keep working; revocations are applied once
				// Keystone answers again.
				v.log.Warn("keystone: cannot read revocation events", "auth_url", v.authURL, "err", err.Error())
			}
			failing = true
			continue
		}
		if failing {
			v.log.Info("keystone: revocation events readable again", "auth_url", v.authURL)
			failing = false
		}
		cursor = next
	}
}

// pollEvents fetches the events revoked after cursor (all of them the first
// time), applies them and returns the new cursor. The query overlaps the
// last answer by a second: applying an event twice is harmless (it only
// matches tokens issued before it), missing one is not.
func (v *Validator) pollEvents(ctx context.Context, cursor time.Time) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	sc, err := v.serviceClient(ctx)
	if err != nil {
		return cursor, err
	}
	u := sc.ServiceURL("OS-REVOKE", "events")
	if !cursor.IsZero() {
		u += "?since=" + url.QueryEscape(cursor.Add(-time.Second).UTC().Format("2006-01-02T15:04:05.000000Z"))
	}
	var body struct {
		Events []*event `json:"events"`
	}
	if _, err := sc.Get(ctx, u, &body, &gophercloud.RequestOpts{OkCodes: []int{http.StatusOK}}); err != nil {
		return cursor, err
	}
	evicted := 0
	v.applyMu.Lock()
	v.revoke.add(body.Events, v.now())
	for _, ev := range body.Events {
		evicted += v.cache.evict(ev)
		if ev.RevokedAt.After(cursor) {
			cursor = ev.RevokedAt.Time
		}
	}
	v.applyMu.Unlock()
	if evicted > 0 {
		v.log.Info("keystone: revoked tokens dropped from the cache", "tokens", evicted)
	}
	return cursor, nil
}
