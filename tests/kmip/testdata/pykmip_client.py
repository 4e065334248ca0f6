"""Drive Keywarden's KMIP server with PyKMIP's ProxyKmipClient.

Usage: pykmip_client.py HOST PORT CERT KEY CA VERSION SCENARIO
VERSION is 1.2, 1.4 or 2.0. Prints one JSON object with what it saw; a
failure prints {"error": ..., "reason": ...} and exits non-zero.
"""
import json
import sys

from kmip.core import enums
from kmip.core.factories import attributes as attribute_factory
from kmip.pie import exceptions, objects
from kmip.pie.client import ProxyKmipClient

VERSIONS = {
    "1.2": enums.KMIPVersion.KMIP_1_2,
    "1.4": enums.KMIPVersion.KMIP_1_4,
    "2.0": enums.KMIPVersion.KMIP_2_0,
}


def attr_value(v):
    value = getattr(v, "value", v)
    if hasattr(value, "name_value"):  # Name
        return value.name_value.value
    if isinstance(value, enums.enum.Enum):
        return value.name
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (int, str, float, bool)) or value is None:
        return value
    return str(value)


def lifecycle(client, out, tag):
    f = attribute_factory.AttributeFactory()

    key_id = client.create(enums.CryptographicAlgorithm.AES, 256, name="pykmip-key-" + tag)
    out["key_id"] = key_id
    key = client.get(key_id)
    out["key_len"] = len(key.value)
    out["key_alg"] = key.cryptographic_algorithm.name

    secret = objects.SecretData(b"pykmip passphrase " + tag.encode(), enums.SecretDataType.PASSWORD,
                                name="pykmip-secret-" + tag)
    secret_id = client.register(secret)
    out["secret_id"] = secret_id
    got = client.get(secret_id)
    out["secret_value"] = got.value.decode()
    out["secret_type"] = got.data_type.name

    found = client.locate(attributes=[f.create_attribute(enums.AttributeType.NAME, "pykmip-key-" + tag)])
    out["located_by_name"] = found
    found = client.locate(attributes=[
        f.create_attribute(enums.AttributeType.OBJECT_TYPE, enums.ObjectType.SECRET_DATA)])
    out["located_secrets"] = found

    uid, attrs = client.get_attributes(key_id)
    out["attributes"] = {a.attribute_name.value: attr_value(a.attribute_value) for a in attrs}
    uid, attrs = client.get_attributes(key_id, ["State", "Cryptographic Length"])
    out["some_attributes"] = {a.attribute_name.value: attr_value(a.attribute_value) for a in attrs}
    out["attribute_list"] = sorted(client.get_attribute_list(key_id))

    client.activate(key_id)
    out["state_after_activate"] = attr_value(client.get_attributes(key_id, ["State"])[1][0].attribute_value)
    try:
        client.destroy(key_id)
        out["destroy_active"] = "accepted"
    except exceptions.KmipOperationFailure as e:
        out["destroy_active"] = e.reason.name
    client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, key_id)
    out["state_after_revoke"] = attr_value(client.get_attributes(key_id, ["State"])[1][0].attribute_value)
    client.destroy(key_id)
    out["state_after_destroy"] = attr_value(client.get_attributes(key_id, ["State"])[1][0].attribute_value)
    try:
        client.get(key_id)
        out["get_destroyed"] = "returned"
    except exceptions.KmipOperationFailure as e:
        out["get_destroyed"] = e.reason.name


def crypto(client, out, tag):
    """Key pairs and the cryptographic services; the Go test checks the
    results against Go's crypto."""
    E = enums
    M = E.CryptographicUsageMask
    pub, priv = client.create_key_pair(E.CryptographicAlgorithm.RSA, 2048,
                                       public_name="py-rsa-pub-" + tag, public_usage_mask=[M.VERIFY, M.ENCRYPT],
                                       private_name="py-rsa-" + tag, private_usage_mask=[M.SIGN, M.DECRYPT])
    out["rsa_public_id"], out["rsa_private_id"] = pub, priv
    try:
        client.sign(b"too early", uid=priv)
        out["sign_preactive"] = "accepted"
    except exceptions.KmipOperationFailure as e:
        out["sign_preactive"] = e.reason.name
    client.activate(pub)
    client.activate(priv)
    pss = {"cryptographic_algorithm": E.CryptographicAlgorithm.RSA, "hashing_algorithm": E.HashingAlgorithm.SHA_256,
           "padding_method": E.PaddingMethod.PSS}
    sig = client.sign(b"pykmip message", uid=priv, cryptographic_parameters=pss)
    out["rsa_pss_sig"] = sig.hex()
    out["rsa_pss_valid"] = client.signature_verify(b"pykmip message", sig, uid=pub, cryptographic_parameters=pss).name
    out["rsa_pss_other"] = client.signature_verify(b"other", sig, uid=pub, cryptographic_parameters=pss).name
    out["rsa_public"] = client.get(pub).value.hex()
    oaep = {"cryptographic_algorithm": E.CryptographicAlgorithm.RSA, "hashing_algorithm": E.HashingAlgorithm.SHA_1,
            "padding_method": E.PaddingMethod.OAEP}
    ct, _ = client.encrypt(b"pykmip secret", uid=pub, cryptographic_parameters=oaep)
    out["rsa_oaep_roundtrip"] = client.decrypt(ct, uid=priv, cryptographic_parameters=oaep).decode()
    try:
        client.sign(b"x", uid=pub, cryptographic_parameters=pss)
        out["sign_with_public"] = "accepted"
    except exceptions.KmipOperationFailure as e:
        out["sign_with_public"] = e.reason.name

    epub, epriv = client.create_key_pair(E.CryptographicAlgorithm.EC, 256,
                                         public_usage_mask=[M.VERIFY], private_usage_mask=[M.SIGN])
    client.activate(epub)
    client.activate(epriv)
    ecdsa = {"digital_signature_algorithm": E.DigitalSignatureAlgorithm.ECDSA_WITH_SHA256}
    sig = client.sign(b"pykmip message", uid=epriv, cryptographic_parameters=ecdsa)
    out["ecdsa_sig"] = sig.hex()
    out["ecdsa_valid"] = client.signature_verify(b"pykmip message", sig, uid=epub, cryptographic_parameters=ecdsa).name
    out["ec_public"] = client.get(epub).value.hex()

    key = client.create(E.CryptographicAlgorithm.AES, 256, cryptographic_usage_mask=[M.ENCRYPT, M.DECRYPT])
    client.activate(key)
    cbc = {"cryptographic_algorithm": E.CryptographicAlgorithm.AES, "block_cipher_mode": E.BlockCipherMode.CBC,
           "padding_method": E.PaddingMethod.PKCS5}
    ct, iv = client.encrypt(b"pykmip data to encrypt", uid=key, cryptographic_parameters=cbc)
    out["aes_cbc_ct"], out["aes_cbc_iv"] = ct.hex(), iv.hex()
    out["aes_cbc_roundtrip"] = client.decrypt(ct, uid=key, cryptographic_parameters=cbc, iv_counter_nonce=iv).decode()
    out["aes_key"] = client.get(key).value.hex()

    hk = client.create(E.CryptographicAlgorithm.HMAC_SHA256, 256, cryptographic_usage_mask=[M.MAC_GENERATE])
    client.activate(hk)
    _, mac = client.mac(b"pykmip mac data", uid=hk, algorithm=E.CryptographicAlgorithm.HMAC_SHA256)
    out["hmac"], out["hmac_key"] = mac.hex(), client.get(hk).value.hex()
    try:
        client.encrypt(b"x", uid=hk, cryptographic_parameters=cbc)
        out["encrypt_with_mac_key"] = "accepted"
    except exceptions.KmipOperationFailure as e:
        out["encrypt_with_mac_key"] = e.reason.name
        out["encrypt_with_mac_key_msg"] = str(e)


def rekey(client, out, tag):
    """Re-key with the dates PyKMIP sends as request attributes."""
    import time
    M = enums.CryptographicUsageMask
    old = client.create(enums.CryptographicAlgorithm.AES, 256, name="py-rekey-" + tag,
                        cryptographic_usage_mask=[M.ENCRYPT, M.DECRYPT])
    client.activate(old)
    now = int(time.time())
    new = client.rekey(uid=old, offset=3600, activation_date=now - 60, process_start_date=now - 60,
                       protect_stop_date=now + 86400)
    out["old"], out["new"] = old, new
    got = client.get_attributes(new, ["State", "Activation Date", "Process Start Date", "Protect Stop Date", "Name"])[1]
    out["new_attributes"] = {a.attribute_name.value: attr_value(a.attribute_value) for a in got}
    out["now"] = now
    try:
        client.rekey(uid=new, deactivation_date=now + 60)
        out["rekey_deactivation"] = "accepted"
    except exceptions.KmipOperationFailure as e:
        out["rekey_deactivation"] = e.reason.name


def locate(client, out, tag):
    """Locate as the version defines it: paging and the storage mask;
    Offset Items is refused below 1.3."""
    f = attribute_factory.AttributeFactory()
    ids = [client.create(enums.CryptographicAlgorithm.AES, 128,
                         name="pyloc-%s-%d" % (tag, i)) for i in range(3)]
    out["ids"] = ids
    by_name = f.create_attribute(enums.AttributeType.NAME, "pyloc-%s-1" % tag)
    out["by_name"] = client.locate(attributes=[by_name])
    algo = f.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_ALGORITHM,
                              enums.CryptographicAlgorithm.AES)
    out["first_two"] = client.locate(maximum_items=2, attributes=[algo])
    out["online"] = client.locate(storage_status_mask=1, attributes=[by_name])
    try:
        client.locate(offset_items=1, attributes=[algo])
        out["offset_items"] = "accepted"
    except exceptions.KmipOperationFailure as e:
        out["offset_items"] = e.reason.name


def get_one(client, out, uid):
    got = client.get(uid)
    out["value"] = got.value.hex()
    out["object"] = type(got).__name__


def main():
    host, port, cert, key, ca, version, scenario = sys.argv[1:8]
    client = ProxyKmipClient(hostname=host, port=int(port), cert=cert, key=key, ca=ca,
                             config_file="/dev/null", kmip_version=VERSIONS[version])
    out = {}
    try:
        client.open()
        if scenario == "lifecycle":
            lifecycle(client, out, version)
        elif scenario == "crypto":
            crypto(client, out, version)
        elif scenario == "rekey":
            rekey(client, out, version)
        elif scenario == "locate":
            locate(client, out, version)
        elif scenario.startswith("get:"):
            get_one(client, out, scenario[4:])
        elif scenario == "discover":
            out["versions"] = [str(v) for v in client.proxy.discover_versions().protocol_versions]
        else:
            raise ValueError("unknown scenario " + scenario)
    except exceptions.KmipOperationFailure as e:
        out["error"] = str(e)
        out["reason"] = e.reason.name
        print(json.dumps(out))
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - report anything to the Go test
        out["error"] = "%s: %s" % (type(e).__name__, e)
        print(json.dumps(out))
        sys.exit(2)
    finally:
        client.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
