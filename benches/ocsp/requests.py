"""Writes OCSP requests for the certificates of a certmill batch, for benches/ocsp_load.sh.

    requests.py ISSUER.crt MANIFEST.csv OUT_DIR

OUT_DIR/get-paths.txt: one `/ocsp/<url-encoded base64>` path per certificate (SHA-1 CertIDs,
no nonce: the RFC 5019 requests a cache may answer); OUT_DIR/post-nonce.der: one request with a
nonce (every one must be signed afresh).
"""

import base64
import csv
import os
import sys
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp


def main(issuer_path, manifest_path, out_dir):
    issuer = x509.load_pem_x509_certificate(open(issuer_path, "rb").read())
    name_hash = hashes.Hash(hashes.SHA1())
    name_hash.update(issuer.subject.public_bytes())
    name_hash = name_hash.finalize()
    key = issuer.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        bits = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    else:
        bits = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    key_hash = hashes.Hash(hashes.SHA1())
    key_hash.update(bits)
    key_hash = key_hash.finalize()
    serials = [
        int(row["serial_hex"], 16)
        for row in csv.DictReader(open(manifest_path, newline=""))
        if row.get("status", "ISSUED") in ("ISSUED", "")
    ]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "get-paths.txt"), "w") as out:
        for serial in serials:
            request = (
                ocsp.OCSPRequestBuilder()
                .add_certificate_by_hash(name_hash, key_hash, serial, hashes.SHA1())
                .build()
            )
            der = request.public_bytes(serialization.Encoding.DER)
            out.write("/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe="") + "\n")
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(name_hash, key_hash, serials[0], hashes.SHA1())
        .add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
        .build()
    )
    with open(os.path.join(out_dir, "post-nonce.der"), "wb") as out:
        out.write(request.public_bytes(serialization.Encoding.DER))
    print(f"{len(serials)} requests written to {out_dir}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
