"""Submits envelopes, replays one re-signed, reads the inbox, verifies every receipt.

usage: python3 demo.py URL CA SENDER_CERT SENDER_KEY READER_CERT READER_KEY GATEWAY_CERT ENVELOPES.json
Prints one JSON object with what happened; exits 1 if a check failed.
"""
import json
import sys

from casebridge_client import Client, VerificationError, verify_receipt


def main(argv):
    url, ca, s_cert, s_key, r_cert, r_key, gw_cert, envelopes_file = argv[1:9]
    sender = Client(url, s_cert, s_key, ca)
    reader = Client(url, r_cert, r_key, ca)
    with open(gw_cert, "rb") as f:
        gateway = f.read()
    with open(envelopes_file, "r", encoding="utf-8") as f:
        envelopes = json.load(f)

    out = {"submitted": [], "replay": None, "inbox": [], "forged": None}
    for env in envelopes:
        if env["type"] == "evidence.transfer":
            # Each exhibit is uploaded first; its item then names the file by hash and size.
            for item in env["body"]["items"]:
                item.update(sender.upload_file(("exhibit " + item["exhibitNo"]).encode("utf-8")))
        status, body = sender.submit(sender.sign(env))
        receipt = verify_receipt(body["receipt"], gateway) if status in (200, 202) else None
        out["submitted"].append(
            {
                "type": env["type"],
                "status": status,
                "code": body.get("code"),
                "receiptOk": receipt is not None
                and receipt["messageId"] == env["id"]
                and receipt["digest"] == body["digest"],
            }
        )

    # ECDSA signs differently each time: a re-signed copy is a replay (protocol §3).
    first = envelopes[0]
    status, body = sender.submit(sender.sign(first))
    out["replay"] = {"status": status, "receipt": body.get("receipt")}

    page = reader.inbox(limit=50)
    out["inbox"] = [m["id"] for m in page["items"]]

    # A receipt checked against another certificate must fail.
    try:
        with open(s_cert, "rb") as f:
            verify_receipt(body["receipt"], f.read())
        out["forged"] = "accepted"
    except VerificationError:
        out["forged"] = "refused"
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
