// Package fetch gets a disk's secret from the key manager with the host's
// own credentials: Barbican v1 REST with a token (X-Auth-Token), or KMIP
// with a client certificate (mutual TLS).
//
// Every attempt has a timeout; transient failures (network errors, 408,
// 429, 5xx, dropped KMIP connections) are retried with exponential backoff
// and jitter; permanent ones map to hostlib.ErrNotFound, ErrForbidden,
// ErrUnauthorized and ErrWrongType at once. The material is read into one
// exact-size buffer owned by the returned hostlib.Secret; scratch buffers
// are zeroed and nothing is written to disk.
package fetch
