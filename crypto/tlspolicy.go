package crypto

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// The TLS policy of Keywarden's listeners (Barbican REST and KMIP).
//
// By default a server speaks TLS 1.3 and, for TLS 1.2, only suites with an
// ephemeral (forward-secret) key exchange and an AEAD cipher. Legacy adds
// the TLS 1.2 suites older KMIP clients and the KMIP profiles name: RSA key
// exchange (no forward secrecy) and CBC modes. TLS 1.3 suites are not
// configurable in Go and are all AEAD and forward-secret.

// secureSuites are ECDHE with AES-GCM or ChaCha20-Poly1305.
var secureSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// legacySuites are what Legacy adds, the KMIP profiles' suites first.
var legacySuites = []uint16{
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_RSA_WITH_AES_128_CBC_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// ServerCipherSuites are the TLS 1.2 suites a Keywarden listener offers:
// forward-secret AEAD only, or those and the legacy ones.
func ServerCipherSuites(legacy bool) []uint16 {
	out := append([]uint16(nil), secureSuites...)
	if legacy {
		out = append(out, legacySuites...)
	}
	return out
}

// ServerTLS is the base server configuration of a Keywarden listener:
// TLS 1.2 or 1.3 and ServerCipherSuites(legacy).
func ServerTLS(legacy bool) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: ServerCipherSuites(legacy)}
}

// LoadCAPool reads PEM CA certificates from file; what names the setting
// in errors ("crypto: transit: CA file").
func LoadCAPool(file, what string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s %s holds no PEM certificate", what, file)
	}
	return pool, nil
}
