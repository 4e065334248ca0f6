package kmip

import (
	"bytes"
	"context"
	"testing"

	"github.com/gemalto/kmip-go/kmip14"

	"github.com/keywarden/keywarden/kms"
)

// The cryptographic services at 16 connections (docs/BENCHMARKS.md):
//
//	go test ./kmip -run '^$' -bench 'ServerCrypto' -benchtime 3s
//
// Each request names an Active key of project "bench"; the server loads
// the record (cache), opens its material and computes.

func benchCrypto(b *testing.B, mk func(svc *kms.Service) (string, error), payload func(id string) op) {
	e := newEnv(b)
	id, err := mk(e.svc)
	if err != nil {
		b.Fatal(err)
	}
	runConns(b, e, 16, requestMsg(b, version{1, 4}, nil, payload(id)))
}

func BenchmarkServerCryptoEncryptGCM4KiB16Conns(b *testing.B) {
	data := bytes.Repeat([]byte{7}, 4096)
	benchCrypto(b, func(svc *kms.Service) (string, error) {
		sec, err := svc.GenerateSecret(context.Background(), who("bench"), kms.GenerateRequest{
			CreateRequest: kms.CreateRequest{Type: kms.Symmetric, BitLength: 256, Mode: "gcm"}})
		if err != nil {
			return "", err
		}
		return sec.ID, nil
	}, func(id string) op {
		return byID(kmip14.OperationEncrypt, id, gcmParams(), v(kmip14.TagData, data))
	})
}

func BenchmarkServerCryptoSignP256_16Conns(b *testing.B) {
	benchCrypto(b, func(svc *kms.Service) (string, error) {
		priv, _, err := svc.CreateKeyPair(context.Background(), who("bench"), kms.KeyPairRequest{
			Algorithm: "ec", BitLength: 256})
		if err != nil {
			return "", err
		}
		return priv.ID, nil
	}, func(id string) op {
		return byID(kmip14.OperationSign, id, v(kmip14.TagData, []byte("a message of some thirty bytes")))
	})
}

func BenchmarkServerCryptoHMACSHA256_16Conns(b *testing.B) {
	benchCrypto(b, func(svc *kms.Service) (string, error) {
		sec, err := svc.CreateSecret(context.Background(), who("bench"), kms.CreateRequest{Type: kms.Symmetric,
			Algorithm: "hmacsha256", Payload: bytes.Repeat([]byte{3}, 32), ContentType: kms.ContentTypeBinary})
		if err != nil {
			return "", err
		}
		return sec.ID, nil
	}, func(id string) op {
		return byID(kmip14.OperationMAC, id, v(kmip14.TagData, bytes.Repeat([]byte{1}, 256)))
	})
}
