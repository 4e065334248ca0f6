"""Connect with TLS 1.2 and one cipher suite (default AES128-SHA256, RSA key
exchange, the suite KMIP profiles name), send a PyKMIP-encoded Discover
Versions request and print the negotiated suite and versions as JSON.

Usage: tls12_cbc.py HOST PORT CERT KEY CA [CIPHER]
CIPHER "pykmip-tls12" is PyKMIP's own TLS 1.2 list (TLS12AuthenticationSuite).
"""
import json
import socket
import ssl
import struct
import sys

from kmip.core import enums, utils
from kmip.core.messages import contents, messages, payloads

host, port, cert, key, ca = sys.argv[1:6]
cipher = sys.argv[6] if len(sys.argv) > 6 else "AES128-SHA256"
if cipher == "pykmip-tls12":
    from kmip.services import auth
    cipher = auth.TLS12AuthenticationSuite().ciphers

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.set_ciphers(cipher + ":@SECLEVEL=0")
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.check_hostname = False

with socket.create_connection((host, int(port)), timeout=10) as raw:
    with ctx.wrap_socket(raw) as s:
        req = messages.RequestMessage(
            request_header=messages.RequestHeader(
                protocol_version=contents.ProtocolVersion(1, 2),
                batch_count=contents.BatchCount(1)),
            batch_items=[messages.RequestBatchItem(
                operation=contents.Operation(enums.Operation.DISCOVER_VERSIONS),
                request_payload=payloads.DiscoverVersionsRequestPayload())])
        buf = utils.BytearrayStream()
        req.write(buf, kmip_version=enums.KMIPVersion.KMIP_1_2)
        s.sendall(buf.buffer)
        head = b""
        while len(head) < 8:
            head += s.recv(8 - len(head))
        n = struct.unpack("!I", head[4:8])[0]
        body = b""
        while len(body) < n:
            body += s.recv(n - len(body))
        resp = messages.ResponseMessage()
        resp.read(utils.BytearrayStream(head + body), kmip_version=enums.KMIPVersion.KMIP_1_2)
        item = resp.batch_items[0]
        print(json.dumps({
            "tls": s.version(),
            "cipher": s.cipher()[0],
            "status": item.result_status.value.name,
            "versions": [str(v) for v in item.response_payload.protocol_versions],
        }))
