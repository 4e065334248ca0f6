package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/hostlib"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// KMIPConfig is the host's access to a KMIP server: mutual TLS, the client
// certificate is the host's identity.
type KMIPConfig struct {
	Addr       string `json:"addr"` // host:5696
	CertFile   string `json:"cert_file"`
	KeyFile    string `json:"key_file"`
	CAFile     string `json:"ca_file"`
	ServerName string `json:"server_name,omitempty"` // TLS name if not the host in Addr
}

// KMIP fetches secrets with KMIP Get. One attempt per call; the connection
// is kept and redialled after a failure.
type KMIP struct {
	cfg    KMIPConfig
	cert   tls.Certificate
	caPEM  []byte
	mu     sync.Mutex
	client *kmipclient.Client
}

// NewKMIP loads the host's certificate and the CA now, so a configuration
// mistake is reported at once instead of being retried as a network fault.
// It does not dial yet.
func NewKMIP(cfg KMIPConfig) (*KMIP, error) {
	if cfg.Addr == "" || cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("kmip: addr, cert_file and key_file are required")
	}
	k := &KMIP{cfg: cfg}
	var err error
	if k.cert, err = tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile); err != nil {
		return nil, fmt.Errorf("kmip client certificate: %w", err)
	}
	if cfg.CAFile != "" {
		if k.caPEM, err = os.ReadFile(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("kmip ca_file: %w", err)
		}
	}
	return k, nil
}

// Close drops the connection.
func (k *KMIP) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.client == nil {
		return nil
	}
	err := k.client.Close()
	k.client = nil
	return err
}

func (k *KMIP) conn(ctx context.Context) (*kmipclient.Client, error) {
	if k.client != nil {
		return k.client, nil
	}
	opts := []kmipclient.Option{kmipclient.WithClientCert(k.cert)}
	if k.caPEM != nil {
		opts = append(opts, kmipclient.WithRootCAPem(k.caPEM))
	}
	if k.cfg.ServerName != "" {
		opts = append(opts, kmipclient.WithServerName(k.cfg.ServerName))
	} else if host, _, err := net.SplitHostPort(k.cfg.Addr); err == nil {
		opts = append(opts, kmipclient.WithServerName(host))
	}
	c, err := kmipclient.DialContext(ctx, k.cfg.Addr, opts...)
	if err != nil {
		return nil, k.connError(err)
	}
	k.client = c
	return c, nil
}

// Get fetches a Symmetric Key, Secret Data or Opaque Object by unique id.
func (k *KMIP) Get(ctx context.Context, id string) (*hostlib.Secret, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, err := k.conn(ctx)
	if err != nil {
		return nil, err
	}
	items, err := c.Batch(ctx, &payloads.GetRequestPayload{UniqueIdentifier: id})
	if err != nil {
		c.Close()
		k.client = nil
		return nil, k.connError(err)
	}
	bi := items[0]
	if bi.ResultStatus != kmip.ResultStatusSuccess {
		return nil, resultError(id, bi)
	}
	resp, ok := bi.ResponsePayload.(*payloads.GetResponsePayload)
	if !ok || resp.Object == nil {
		return nil, fmt.Errorf("kmip get %s: empty response", id)
	}
	return secretFromObject(id, resp.Object)
}

// connError sorts transport failures: certificates and TLS alerts are
// configuration problems that a retry will not fix; the rest may pass.
func (k *KMIP) connError(err error) error {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var verifyErr *x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &verifyErr):
		return fmt.Errorf("kmip %s: server certificate: %w", k.cfg.Addr, err)
	case strings.Contains(err.Error(), "remote error: tls:"):
		return fmt.Errorf("%w: kmip %s refused the client certificate: %v", hostlib.ErrUnauthorized, k.cfg.Addr, err)
	}
	return transient(fmt.Errorf("kmip %s: %w", k.cfg.Addr, err), 0)
}

func resultError(id string, bi kmip.ResponseBatchItem) error {
	msg := fmt.Sprintf("kmip get %s: %s", id, ttlv.EnumStr(bi.ResultReason))
	if bi.ResultMessage != "" {
		msg += ": " + bi.ResultMessage
	}
	switch bi.ResultReason {
	case kmip.ResultReasonItemNotFound:
		return fmt.Errorf("%w: %s", hostlib.ErrNotFound, msg)
	case kmip.ResultReasonPermissionDenied:
		return fmt.Errorf("%w: %s", hostlib.ErrForbidden, msg)
	case kmip.ResultReasonAuthenticationNotSuccessful:
		return fmt.Errorf("%w: %s", hostlib.ErrUnauthorized, msg)
	}
	if bi.ResultStatus == kmip.ResultStatusOperationPending || bi.ResultStatus == kmip.ResultStatusOperationUndone {
		return transient(errors.New(msg), 0)
	}
	return errors.New(msg)
}

// secretFromObject copies the material into the Secret's own buffer and
// zeroes the decoder's copy.
func secretFromObject(id string, obj kmip.Object) (*hostlib.Secret, error) {
	var (
		typ, alg string
		bits     int
		raw      []byte
		err      error
	)
	switch o := obj.(type) {
	case *kmip.SymmetricKey:
		if o.KeyBlock.KeyWrappingData != nil {
			return nil, fmt.Errorf("kmip get %s: wrapped keys are not supported", id)
		}
		typ, alg, bits = hostlib.TypeSymmetric, strings.ToLower(ttlv.EnumStr(o.KeyBlock.CryptographicAlgorithm)), int(o.KeyBlock.CryptographicLength)
		raw, err = o.KeyMaterial()
	case *kmip.SecretData:
		typ = hostlib.TypeOpaque
		if o.SecretDataType == kmip.SecretDataTypePassword {
			typ = hostlib.TypePassphrase
		}
		raw, err = o.Data()
	case *kmip.OpaqueObject:
		typ, raw = hostlib.TypeOpaque, o.OpaqueDataValue
	default:
		return nil, fmt.Errorf("%w: kmip object %s is a %s", hostlib.ErrWrongType, id, ttlv.EnumStr(obj.ObjectType()))
	}
	if err != nil {
		return nil, fmt.Errorf("kmip get %s: %w", id, err)
	}
	material := append(make([]byte, 0, len(raw)), raw...)
	crypto.Zero(raw)
	s := hostlib.NewSecret(id, typ, material)
	s.Algorithm, s.BitLength = alg, bits
	return s, nil
}
