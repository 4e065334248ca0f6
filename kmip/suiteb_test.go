package kmip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"slices"
	"strings"
	"testing"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"
	ovh "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"

	"github.com/keywarden/keywarden/kms"
)

// TestSuiteBOVHClient runs the OASIS Suite B test cases' operations
// (SUITEB_128-M-1-14, SUITEB_192-M-1-14: Query Operations and Objects)
// with github.com/ovh/kmip-go, a separate KMIP implementation, restricted
// to the mode's TLS, then Query Profiles and a Create and Get.
func TestSuiteBOVHClient(t *testing.T) {
	for _, mode := range []SuiteB{SuiteB128, SuiteB192} {
		t.Run(strings.TrimPrefix(mode.String(), "Suite B "), func(t *testing.T) {
			e := suiteBEnv(t, mode)
			pool := x509.NewCertPool()
			pool.AddCert(e.ca.Certificate())
			cfg := &tls.Config{
				RootCAs: pool, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12,
				Certificates:     []tls.Certificate{issuedCert(t, e.ca, "ecdsa-p384", "ovh", "user-ovh", admin...)},
				CipherSuites:     mode.suites(),
				CurvePreferences: mode.curves(),
			}
			c, err := kmipclient.Dial(e.addr, kmipclient.WithTlsConfig(cfg), kmipclient.EnforceVersion(ovh.V1_4))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			q, err := c.Query().Operations().Objects().ExecContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range []ovh.Operation{ovh.OperationQuery, ovh.OperationLocate, ovh.OperationGet, ovh.OperationCreate,
				ovh.OperationRegister, ovh.OperationDestroy, ovh.OperationCreateKeyPair} {
				if !slices.Contains(q.Operations, o) {
					t.Errorf("Query Operations lacks %v", o)
				}
			}
			for _, o := range []ovh.ObjectType{ovh.ObjectTypeSymmetricKey, ovh.ObjectTypePublicKey, ovh.ObjectTypePrivateKey} {
				if !slices.Contains(q.ObjectType, o) {
					t.Errorf("Query Objects lacks %v", o)
				}
			}
			p, err := c.Query().Profiles().ExecContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := map[SuiteB]ovh.ProfileName{SuiteB128: ovh.ProfileNameSuiteBMinLOS_128ServerKMIPV1_4, SuiteB192: ovh.ProfileNameSuiteBMinLOS_192ServerKMIPV1_4}
			var names []ovh.ProfileName
			for _, pi := range p.ProfileInformation {
				names = append(names, pi.ProfileName)
			}
			for m, n := range want {
				if slices.Contains(names, n) != (m == mode) {
					t.Errorf("Query Profiles %v: %v claimed %v", names, n, m == mode)
				}
			}
			cr, err := c.Create().AES(256, ovh.CryptographicUsageEncrypt).ExecContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Get(cr.UniqueIdentifier).ExecContext(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSuiteBServerConfig: a Suite B server needs an ECDSA certificate of
// the mode and no legacy suites; an unknown mode is refused.
func TestSuiteBServerConfig(t *testing.T) {
	ids, err := NewIdentities(sharedCA(t).Certificate(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := Config{Service: newService(t), Identities: ids, Certificate: serverCert(t)}
	for _, c := range []struct {
		what string
		tls  TLSOptions
		want string
	}{
		{"RSA certificate only", TLSOptions{SuiteB: SuiteB128}, "needs an ECDSA server certificate"},
		{"legacy suites", TLSOptions{SuiteB: SuiteB192, LegacyCipherSuites: true}, "without legacy suites"},
		{"unknown mode", TLSOptions{SuiteB: 256}, "want 0, 128 or 192"},
	} {
		cfg := base
		cfg.TLS = c.tls
		if _, err := NewServer(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.what, err, c.want)
		}
	}
	// The P-256 certificate of the RSA CA is signed with RSA: not Suite B.
	cfg := base
	cfg.TLS = TLSOptions{SuiteB: SuiteB128}
	withECDSACert(t)(&cfg)
	if _, err := NewServer(cfg); err == nil || !strings.Contains(err.Error(), "signed with SHA256-RSA") {
		t.Errorf("RSA-signed ECDSA certificate: %v", err)
	}
}

// Over HTTPS (Handle, as POST /kmip on the REST listener runs it) the
// connection is not Suite B: Query Profiles does not claim it there.
func TestSuiteBNotClaimedOverHTTPS(t *testing.T) {
	e := suiteBEnv(t, SuiteB128)
	who := kms.Identity{Project: "p1", User: "u", Roles: admin}
	msg := requestMsg(t, version{1, 4}, nil, op{op: kmip14.OperationQuery, payload: []ttlv.Value{
		v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryProfiles)}})
	r := decodeResp(t, e.srv.Handle(context.Background(), who, msg)).ok(0)
	n := 0
	for _, pi := range all(r, kmip14.TagProfileInformation) {
		n++
		if get(pi, kmip14.TagProfileName) == ttlv.EnumValue(kmip14.ProfileNameSuiteBMinLOS_128ServerKMIPV1_4) {
			t.Fatal("Suite B claimed over HTTPS")
		}
	}
	if n == 0 {
		t.Fatal("no profile claimed at all")
	}
	// Over the listener it is (the profile test checks the rest).
	if !slices.Contains(queryProfiles(t, e), kmip14.ProfileNameSuiteBMinLOS_128ServerKMIPV1_4) {
		t.Fatal("Suite B not claimed over the KMIP listener")
	}
}
