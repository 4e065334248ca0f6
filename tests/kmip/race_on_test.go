//go:build race

package kmip_test

// raceEnabled: ovh/kmip-go v0.4.0 closes a channel while its dialer still
// sends on it when a server refuses the connection; the race detector
// reports it (a bug in the client, not the server), so the refusal test
// checks with crypto/tls under -race.
const raceEnabled = true
