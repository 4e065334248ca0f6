package fetch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/keywarden/keywarden/hostlib"
)

// Retry bounds each fetch.
type Retry struct {
	Attempts int           // total tries [4]
	Timeout  time.Duration // per try [10s]
	Base     time.Duration // first backoff [200ms]
	Max      time.Duration // backoff ceiling [5s]
}

// DefaultRetry: four tries over roughly two seconds of backoff.
var DefaultRetry = Retry{Attempts: 4, Timeout: 10 * time.Second, Base: 200 * time.Millisecond, Max: 5 * time.Second}

func (r Retry) withDefaults() Retry {
	d := DefaultRetry
	if r.Attempts > 0 {
		d.Attempts = r.Attempts
	}
	if r.Timeout > 0 {
		d.Timeout = r.Timeout
	}
	if r.Base > 0 {
		d.Base = r.Base
	}
	if r.Max > 0 {
		d.Max = r.Max
	}
	return d
}

// transientError marks a failure worth another try; after may carry the
// server's Retry-After.
type transientError struct {
	err   error
	after time.Duration
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(err error, after time.Duration) error { return &transientError{err: err, after: after} }

// do runs try until it succeeds, fails permanently, or the attempts run
// out; then the last transient error is wrapped in hostlib.ErrUnavailable.
func (r Retry) do(ctx context.Context, try func(ctx context.Context) error) error {
	r = r.withDefaults()
	var last error
	for i := 0; i < r.Attempts; i++ {
		actx, cancel := context.WithTimeout(ctx, r.Timeout)
		err := try(actx)
		timedOut := actx.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %v", ctx.Err(), err)
		}
		var te *transientError
		if !errors.As(err, &te) && !timedOut {
			return err
		}
		last = err
		if i == r.Attempts-1 {
			break
		}
		wait := r.backoff(i)
		if te != nil && te.after > wait {
			wait = min(te.after, r.Max)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ctx.Err(), last)
		}
	}
	return fmt.Errorf("%w after %d attempts: %v", hostlib.ErrUnavailable, r.Attempts, last)
}

// backoff is Base·2^i capped at Max, jittered into [d/2, d] so hosts that
// failed together do not retry together.
func (r Retry) backoff(i int) time.Duration {
	d := r.Base << min(i, 20)
	if d > r.Max || d <= 0 {
		d = r.Max
	}
	return d/2 + rand.N(d/2+1)
}
