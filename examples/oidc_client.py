"""A tiny OpenID Connect client: sign in through the browser, print the decoded tokens.

It does what any web or native app does (RFC 8252 for the loopback redirect, RFC 7636 for
PKCE): read the provider's discovery document, open the authorization URL in your browser,
receive the code on a one-shot callback server on 127.0.0.1, exchange it, and verify both
tokens against the JWKS with PyJWT.

    .venv/bin/python examples/oidc_client.py --issuer http://127.0.0.1:8000 --client-id <id> \\
        [--client-secret=<secret>] [--org-code org_...] [--audience <api>] [--port 8765] \\
        [--print-tokens]

``--audience`` asks for an access token for your API (its ``aud``); ``--print-tokens`` ends the
output with ``export AT=<access token>`` (and ``ID_TOKEN``, ``REFRESH_TOKEN``) lines to paste into
a shell, e.g. to call ``examples/resource_server.py`` with ``curl -H "Authorization: Bearer $AT"``.

Write ``--client-secret=<secret>`` with the ``=``: a generated secret may start with ``-``,
which argparse would otherwise take for the next flag.

Register ``http://127.0.0.1:<port>/callback`` as a redirect URI of the application first.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt

RAW_TOKEN_VARIABLES = {
    "access_token": "AT",
    "id_token": "ID_TOKEN",
    "refresh_token": "REFRESH_TOKEN",
}
"""Shell variables ``--print-tokens`` sets, per token of the response."""


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def wait_for_callback(port: int) -> dict[str, str]:
    """Serve one request on the loopback callback and return its query parameters."""
    received: dict[str, str] = {}
    done = threading.Event()

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/callback":
                self.send_error(404)
                return
            received.update({k: v[0] for k, v in parse_qs(url.query).items()})
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"Signed in. You can close this window and return to the terminal.")
            done.set()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", port), Callback)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    done.wait()
    server.shutdown()
    return received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuer", default="http://127.0.0.1:8000")
    parser.add_argument("--client-id", required=True)
    parser.add_argument(
        "--client-secret", help="As --client-secret=<secret>; omit for a public (SPA) application."
    )
    parser.add_argument("--org-code", help="Sign in to this organization.")
    parser.add_argument(
        "--audience",
        help="An API the application is authorized for, e.g. http://127.0.0.1:8001 in the demo.",
    )
    parser.add_argument(
        "--print-tokens",
        action="store_true",
        help="End with 'export AT=...' lines holding the raw tokens.",
    )
    parser.add_argument("--scope", default="openid profile email offline")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--no-browser", action="store_true", help="Only print the URL.")
    args = parser.parse_args()

    with httpx.Client(timeout=10) as http:
        meta = http.get(f"{args.issuer.rstrip('/')}/.well-known/openid-configuration").json()
        redirect_uri = f"http://127.0.0.1:{args.port}/callback"
        verifier, challenge = pkce_pair()
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        params = {
            "response_type": "code",
            "client_id": args.client_id,
            "redirect_uri": redirect_uri,
            "scope": args.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if args.org_code:
            params["org_code"] = args.org_code
        if args.audience:
            params["audience"] = args.audience
        url = f"{meta['authorization_endpoint']}?{urlencode(params)}"
        print(f"Open this URL to sign in:\n  {url}\n", flush=True)
        if not args.no_browser:
            webbrowser.open(url)

        callback = wait_for_callback(args.port)
        if "error" in callback:
            raise SystemExit(f"authorization failed: {callback}")
        if callback.get("state") != state:
            raise SystemExit("state mismatch: the callback is not the answer to our request")

        form = {
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": args.client_id,
        }
        if args.client_secret:
            auth = httpx.BasicAuth(args.client_id, args.client_secret)
            response = http.post(meta["token_endpoint"], data=form, auth=auth)
        else:
            response = http.post(meta["token_endpoint"], data=form)
        tokens = response.json()
        if response.status_code != 200:
            raise SystemExit(f"token request failed ({response.status_code}): {tokens}")

    jwks = jwt.PyJWKClient(meta["jwks_uri"])
    for name in ("access_token", "id_token"):
        if name not in tokens:
            continue
        key = jwks.get_signing_key_from_jwt(tokens[name])
        claims = jwt.decode(
            tokens[name],
            key,
            algorithms=meta["id_token_signing_alg_values_supported"],
            issuer=meta["issuer"],
            options={"verify_aud": False},
        )
        if name == "id_token" and claims.get("nonce") != nonce:
            raise SystemExit("nonce mismatch in the ID token")
        print(f"{name} (verified against {meta['jwks_uri']}):")
        print(json.dumps(claims, indent=2, sort_keys=True))
    if "refresh_token" in tokens:
        print("refresh_token: received (rotates on every use)")
    if args.print_tokens:
        for name, variable in RAW_TOKEN_VARIABLES.items():
            if name in tokens:
                print(f"export {variable}={tokens[name]}")


if __name__ == "__main__":
    main()
