"""The OASIS Suite B test case (SUITEB_128-M-1-14 / SUITEB_192-M-1-14:
Query Operations and Objects at KMIP 1.4), encoded by PyKMIP, over TLS 1.2
restricted to one cipher suite and one ECDHE curve. Prints JSON.

Usage: suiteb_query.py HOST PORT CERT KEY CA CIPHER CURVE
"""
import json
import socket
import ssl
import struct
import sys

from kmip.core import enums, utils
from kmip.core.messages import contents, messages, payloads

host, port, cert, key, ca, cipher, curve = sys.argv[1:8]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.set_ciphers(cipher)
ctx.set_ecdh_curve(curve)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.check_hostname = False

v14 = enums.KMIPVersion.KMIP_1_4
try:
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            req = messages.RequestMessage(
                request_header=messages.RequestHeader(
                    protocol_version=contents.ProtocolVersion(1, 4),
                    batch_count=contents.BatchCount(1)),
                batch_items=[messages.RequestBatchItem(
                    operation=contents.Operation(enums.Operation.QUERY),
                    request_payload=payloads.QueryRequestPayload(query_functions=[
                        enums.QueryFunction.QUERY_OPERATIONS, enums.QueryFunction.QUERY_OBJECTS]))])
            buf = utils.BytearrayStream()
            req.write(buf, kmip_version=v14)
            s.sendall(buf.buffer)
            head = b""
            while len(head) < 8:
                chunk = s.recv(8 - len(head))
                if not chunk:
                    raise ConnectionError("closed before a response")
                head += chunk
            n = struct.unpack("!I", head[4:8])[0]
            body = b""
            while len(body) < n:
                body += s.recv(n - len(body))
            resp = messages.ResponseMessage()
            resp.read(utils.BytearrayStream(head + body), kmip_version=v14)
            item = resp.batch_items[0]
            p = item.response_payload
            print(json.dumps({
                "tls": s.version(),
                "cipher": s.cipher()[0],
                "status": item.result_status.value.name,
                "operations": [o.name for o in (p.operations or [])],
                "objects": [o.name for o in (p.object_types or [])],
            }))
except (OSError, ssl.SSLError, ConnectionError) as e:
    print(json.dumps({"refused": str(e)}))
