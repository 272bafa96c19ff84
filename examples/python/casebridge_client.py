"""A small casebridge client written from docs/protocol.md alone.

Needs `cryptography` and `requests`. Signs envelopes as compact JWS (protocol §2.1),
submits them over mutual TLS (§3), reads the inbox (§5.3), and verifies receipts
against a gateway certificate the caller pinned, never the one a receipt carries.
"""
import base64
import hashlib
import json
from urllib.parse import urljoin

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

MESSAGE_TYP = "casebridge-message+jws"
RECEIPT_TYP = "casebridge-receipt+jws"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


PEM_END = b"-----END CERTIFICATE-----"


def load_chain(pem: bytes):
    """Every certificate of a PEM file, in order (leaf first)."""
    blocks = [b + PEM_END for b in pem.split(PEM_END) if b"-----BEGIN CERTIFICATE-----" in b]
    return [x509.load_pem_x509_certificate(b.strip()) for b in blocks]


class VerificationError(Exception):
    pass


class Client:
    def __init__(self, url, cert_file, key_file, ca_file):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.cert = (cert_file, key_file)
        # Passed on every request: a REQUESTS_CA_BUNDLE in the environment would win over session.verify.
        self.ca = ca_file
        with open(cert_file, "rb") as f:
            self.chain = load_chain(f.read())
        with open(key_file, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)

    # protocol §2.1: protected header alg, typ, x5c (leaf first, standard base64 DER).
    def _alg(self):
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return {"secp256r1": "ES256", "secp384r1": "ES384"}[self.key.curve.name]
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return "EdDSA"
        if isinstance(self.key, rsa.RSAPrivateKey):
            return "PS256"
        raise ValueError("unsupported key type")

    def sign(self, envelope: dict) -> str:
        alg = self._alg()
        x5c = [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
            for c in self.chain
        ]
        header = {"alg": alg, "typ": MESSAGE_TYP, "x5c": x5c}
        payload = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        signing_input = (b64url(json.dumps(header).encode("ascii")) + "." + b64url(payload)).encode(
            "ascii"
        )
        if alg in ("ES256", "ES384"):
            h = hashes.SHA256() if alg == "ES256" else hashes.SHA384()
            size = 32 if alg == "ES256" else 48
            r, s = decode_dss_signature(self.key.sign(signing_input, ec.ECDSA(h)))
            sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")  # RFC 7518 §3.4
        elif alg == "EdDSA":
            sig = self.key.sign(signing_input)
        else:
            sig = self.key.sign(
                signing_input,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                hashes.SHA256(),
            )
        return signing_input.decode("ascii") + "." + b64url(sig)

    # protocol §3: 202 accepted, 200 replay; every error is problem+json with `code`.
    def submit(self, jws: str):
        res = self.session.post(
            self.url + "/v1/messages",
            data=jws.encode("ascii"),
            headers={"content-type": "application/jose"},
            verify=self.ca,
        )
        return res.status_code, res.json()

    # protocol §9: an exhibit travels as a tus 1.0 upload; the transfer names it by hash and size.
    def upload_file(self, data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        tus = {"tus-resumable": "1.0.0"}
        res = self.session.post(
            self.url + "/v1/files",
            headers={
                **tus,
                "upload-length": str(len(data)),
                "upload-metadata": "sha256 " + base64.b64encode(digest.encode("ascii")).decode("ascii"),
            },
            verify=self.ca,
        )
        if res.status_code == 201:
            res = self.session.patch(
                urljoin(self.url + "/", res.headers["location"]),
                data=data,
                headers={
                    **tus,
                    "upload-offset": "0",
                    "content-type": "application/offset+octet-stream",
                },
                verify=self.ca,
            )
        if res.status_code not in (200, 204):
            raise VerificationError("upload refused: %d %s" % (res.status_code, res.text))
        return {"sha256": digest, "size": len(data)}

    def inbox(self, **query):
        return self.session.get(self.url + "/v1/inbox", params=query, verify=self.ca).json()

    def get(self, message_id):
        return self.session.get(self.url + "/v1/messages/" + message_id, verify=self.ca).json()


def verify_receipt(receipt: str, pinned_gateway_pem: bytes) -> dict:
    """protocol §3: a receipt is a JWS by the gateway; check it with the pinned certificate."""
    pinned = x509.load_pem_x509_certificate(pinned_gateway_pem)
    parts = receipt.split(".")
    if len(parts) != 3:
        raise VerificationError("not a compact JWS")
    header = json.loads(b64url_decode(parts[0]))
    if header.get("typ") != RECEIPT_TYP:
        raise VerificationError("not a receipt")
    leaf = base64.b64decode(header["x5c"][0])
    if leaf != pinned.public_bytes(serialization.Encoding.DER):
        raise VerificationError("not signed with the pinned gateway certificate")
    key = pinned.public_key()
    data = (parts[0] + "." + parts[1]).encode("ascii")
    sig = b64url_decode(parts[2])
    alg = header["alg"]
    try:
        if alg in ("ES256", "ES384"):
            size = len(sig) // 2
            der = encode_dss_signature(
                int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
            )
            key.verify(der, data, ec.ECDSA(hashes.SHA256() if alg == "ES256" else hashes.SHA384()))
        elif alg == "EdDSA":
            key.verify(sig, data)
        elif alg == "PS256":
            key.verify(
                sig,
                data,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                hashes.SHA256(),
            )
        else:
            raise VerificationError("alg not allowed")
    except VerificationError:
        raise
    except Exception as e:  # cryptography raises InvalidSignature
        raise VerificationError("the receipt signature does not verify") from e
    return json.loads(b64url_decode(parts[1]))
