#!/usr/bin/env python3
"""Opens PKCS#12 files with Python `cryptography` and prints what it sees as JSON.

Usage: check_p12.py PASSWORD_FILE FILE.p12...
For each file: the key must match the leaf certificate; prints subject, serial, validity,
extensions (oid, critical), the friendly name and the number of extra certificates.
"""
import json
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12


def main() -> None:
    password = open(sys.argv[1], "rb").read().splitlines()[0]
    out = []
    for path in sys.argv[2:]:
        data = open(path, "rb").read()
        p12 = pkcs12.load_pkcs12(data, password)
        key, cert = p12.key, p12.cert.certificate
        pub = serialization.PublicFormat.SubjectPublicKeyInfo
        enc = serialization.Encoding.DER
        if key.public_key().public_bytes(enc, pub) != cert.public_key().public_bytes(enc, pub):
            raise SystemExit(f"{path}: key does not match certificate")
        out.append({
            "file": path,
            "subject": [[a.oid.dotted_string, a.value] for a in cert.subject],
            "serial": format(cert.serial_number, "x"),
            "serial_bytes": (cert.serial_number.bit_length() + 8) // 8,
            "not_before": int(cert.not_valid_before_utc.timestamp()),
            "not_after": int(cert.not_valid_after_utc.timestamp()),
            "extensions": [[e.oid.dotted_string, e.critical] for e in cert.extensions],
            "friendly_name": p12.cert.friendly_name.decode() if p12.cert.friendly_name else None,
            "additional": len(p12.additional_certs),
            "key_type": type(key).__name__,
        })
    print(json.dumps(out))


main()
