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
