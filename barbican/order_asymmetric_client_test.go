package barbican

import (
	"os/exec"
	"strings"
	"testing"
)

// python-barbicanclient's calls in castellan's create_key_pair order:
// orders.create_asymmetric, submit, orders.get (container_ref),
// containers.get (secret_refs), then each secret's payload, read as
// castellan reads it (PEM → DER with cryptography).
const asymmetricScript = `
import sys
from keystoneauth1 import session
from barbicanclient import client
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives import hashes

c = client.Client(session=session.Session(), endpoint=sys.argv[1], project_id="p1")
order = c.orders.create_asymmetric(algorithm="RSA", bit_length=2048, name="castellan-pair")
ref = order.submit()
o = c.orders.get(ref)
assert o.status == "ACTIVE", o.status
cont = c.containers.get(o.container_ref)
priv = c.secrets.get(cont.secret_refs["private_key"])
pub = c.secrets.get(cont.secret_refs["public_key"])
assert priv.secret_type == "private" and pub.secret_type == "public", (priv.secret_type, pub.secret_type)
k = serialization.load_pem_private_key(priv.payload, password=None)
u = serialization.load_pem_public_key(pub.payload)
sig = k.sign(b"msg", padding.PKCS1v15(), hashes.SHA256())
u.verify(sig, b"msg", padding.PKCS1v15(), hashes.SHA256())
print("OK", k.key_size)
`

func TestBarbicanClientAsymmetricOrder(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import barbicanclient, cryptography").Run(); err != nil {
		t.Skip("python3-barbicanclient is not installed")
	}
	e := newEnv(t)
	out := runCLI(t, "/usr/bin/python3", "-c", asymmetricScript, e.url)
	if strings.TrimSpace(out) != "OK 2048" {
		t.Fatalf("barbicanclient: %q", out)
	}
}

// The same with a pass_phrase: the container's private_key_passphrase, and
// the private key opened by cryptography with it (and not without it).
const asymmetricPassScript = `
import sys
from keystoneauth1 import session
from barbicanclient import client
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives import hashes

c = client.Client(session=session.Session(), endpoint=sys.argv[1], project_id="p1")
order = c.orders.create_asymmetric(algorithm="RSA", bit_length=2048, name="protected-pair", pass_phrase="open sesame")
o = c.orders.get(order.submit())
cont = c.containers.get(o.container_ref)
priv = c.secrets.get(cont.secret_refs["private_key"])
pub = c.secrets.get(cont.secret_refs["public_key"])
pp = c.secrets.get(cont.secret_refs["private_key_passphrase"])
assert pp.secret_type == "passphrase", pp.secret_type
assert pp.payload in ("open sesame", b"open sesame"), pp.payload
assert priv.payload.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"), priv.payload[:40]
try:
    serialization.load_pem_private_key(priv.payload, password=None)
    print("opened without the passphrase"); sys.exit(1)
except TypeError:
    pass
k = serialization.load_pem_private_key(priv.payload, password=b"open sesame")
u = serialization.load_pem_public_key(pub.payload)
sig = k.sign(b"msg", padding.PKCS1v15(), hashes.SHA256())
u.verify(sig, b"msg", padding.PKCS1v15(), hashes.SHA256())
print("OK", k.key_size)
`

func TestBarbicanClientAsymmetricOrderPassphrase(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import barbicanclient, cryptography").Run(); err != nil {
		t.Skip("python3-barbicanclient is not installed")
	}
	e := newEnv(t)
	out := runCLI(t, "/usr/bin/python3", "-c", asymmetricPassScript, e.url)
	if strings.TrimSpace(out) != "OK 2048" {
		t.Fatalf("barbicanclient: %q", out)
	}
}
