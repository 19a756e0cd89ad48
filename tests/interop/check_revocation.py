"""Reads a CRL or an OCSP response with Python `cryptography` and prints what it says as JSON.

    check_revocation.py crl FILE.der ISSUER.pem
    check_revocation.py ocsp FILE.der [ISSUER.pem]

A CRL's signature is checked against the issuer's public key; an OCSP response's signature
against the responder certificate it carries, and that certificate against the issuer.
"""

import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509 import ocsp


def verify(issuer_key, signature, data, hash_algorithm):
    if isinstance(issuer_key, ec.EllipticCurvePublicKey):
        issuer_key.verify(signature, data, ec.ECDSA(hash_algorithm))
    else:
        issuer_key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)


def crl(path, issuer_path):
    issuer = x509.load_pem_x509_certificate(open(issuer_path, "rb").read())
    crl = x509.load_der_x509_crl(open(path, "rb").read())
    entries = []
    for revoked in crl:
        reason = None
        try:
            reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason.name
        except x509.ExtensionNotFound:
            pass
        entries.append(
            {
                "serial": format(revoked.serial_number, "x"),
                "reason": reason,
                "date": revoked.revocation_date_utc.isoformat(),
            }
        )
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    print(
        json.dumps(
            {
                "signature_valid": crl.is_signature_valid(issuer.public_key()),
                "issuer_matches": crl.issuer == issuer.subject,
                "crl_number": number,
                "this_update": crl.last_update_utc.isoformat(),
                "next_update": crl.next_update_utc.isoformat(),
                "entries": entries,
            }
        )
    )


def ocsp_response(path, issuer_path=None):
    response = ocsp.load_der_ocsp_response(open(path, "rb").read())
    out = {"response_status": response.response_status.name}
    if response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL:
        out["certificate_status"] = response.certificate_status.name
        out["serial"] = format(response.serial_number, "x")
        out["revocation_reason"] = (
            response.revocation_reason.name if response.revocation_reason else None
        )
        out["responder_key_hash"] = (response.responder_key_hash or b"").hex()
        out["certificates"] = len(response.certificates)
        out["next_update"] = (
            response.next_update_utc.isoformat() if response.next_update_utc else None
        )
        responder = response.certificates[0]
        verify(
            responder.public_key(),
            response.signature,
            response.tbs_response_bytes,
            response.signature_hash_algorithm,
        )
        out["signature_valid"] = True
        eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        out["responder_ocsp_signing"] = x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in eku
        if issuer_path:
            issuer = x509.load_pem_x509_certificate(open(issuer_path, "rb").read())
            responder.verify_directly_issued_by(issuer)
            out["responder_issued_by_ca"] = True
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "crl":
        crl(sys.argv[2], sys.argv[3])
    else:
        ocsp_response(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
