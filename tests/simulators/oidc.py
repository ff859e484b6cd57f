"""An OpenID Connect provider on loopback, for tests driven by the service's real OIDC client (authlib, joserfc).

It answers as an organisation's identity provider does: discovery at
``/.well-known/openid-configuration``, ``GET /authorize`` (the person is already signed in
there: it redirects straight back to the client's ``redirect_uri`` with a code and the state),
``POST /token`` (client_secret_basic; the code works once and only with its PKCE verifier; an ID
token signed RS256 with a test RSA key) and ``GET /jwks`` (that key's public half).

``person`` is who is signed in at the provider. A test makes it misbehave on purpose:
``claims`` overrides the next ID tokens' claims (``{"aud": "someone-else"}``, ``{"exp": 0}``,
``{"nonce": "other"}``...), ``sign_with_stranger`` signs them with a key not in the JWKS, ``deny``
sends the browser back with ``error=access_denied`` (the person cancelled),
``sign_with_unknown_kid`` signs them with a fresh key under a made-up ``kid`` each time (a forger's),
``rotate()`` replaces the signing key by a new one with a new ``kid`` (the JWKS then holds only the
new one), ``cache_control`` is sent with the discovery document and the JWKS, and a path in
``broken`` answers 503 (the provider half down).
``ledger`` holds every request (path and status), ``requests(path)`` counts them::

    async with OidcProvider(client_id="plp", client_secret="s3cret") as idp:
        settings = Settings(oidc_issuer=idp.issuer, oidc_client_id="plp", oidc_client_secret="s3cret", ...)
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlencode

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey


@dataclass
class Person:
    """Who is signed in at the provider."""

    email: str
    email_verified: bool = True
    sub: str = "person-1"


@dataclass(frozen=True)
class Grant:
    """A code handed out by ``/authorize``, waiting to be exchanged."""

    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    person: Person


@dataclass(frozen=True)
class Request:
    path: str
    status: int


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class OidcProvider:
    """An identity provider on ``host`` and ``port`` (0: a free one), used as an async context manager."""

    client_id: str = "plp-console"
    client_secret: str = "provider-secret"
    person: Person = field(default_factory=lambda: Person("coordinatrice@plp-ixelles.example"))
    claims: dict[str, Any] = field(default_factory=dict)
    sign_with_stranger: bool = False
    sign_with_unknown_kid: bool = False
    cache_control: str | None = None
    broken: set[str] = field(default_factory=set)
    deny: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    ledger: list[Request] = field(default_factory=list)
    issuer: str = ""

    def __post_init__(self) -> None:
        self.key, self.stranger = _key("provider-key"), _key("provider-key")
        self.grants: dict[str, Grant] = {}
        self._runner: web.AppRunner | None = None
        self._rotations = 0

    def rotate(self) -> None:
        """A new signing key, under a new ``kid``; the old one is retired from the JWKS at once."""
        self._rotations += 1
        self.key = _key(f"provider-key-{self._rotations}")

    def requests(self, path: str) -> int:
        """How many requests the provider had on ``path``."""
        return sum(1 for request in self.ledger if request.path == path)

    async def __aenter__(self) -> OidcProvider:
        app = web.Application(middlewares=[self._outage])
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        app.router.add_get("/jwks", self._jwks)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.issuer = f"http://{self.host}:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _outage(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in self.broken:
            return self._answer(request, web.Response(status=503, text="down for maintenance"))
        return await handler(request)  # type: ignore[no-any-return]

    def _cacheable(self) -> dict[str, str]:
        return {"Cache-Control": self.cache_control} if self.cache_control is not None else {}

    def _answer(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        self.ledger.append(Request(request.path, response.status))
        return response

    async def _discovery(self, request: web.Request) -> web.StreamResponse:
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }
        return self._answer(request, web.json_response(document, headers=self._cacheable()))

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        public = KeySet([self.key]).as_dict(private=False)
        return self._answer(request, web.json_response(public, headers=self._cacheable()))

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        if (
            query.get("client_id") != self.client_id
            or query.get("response_type") != "code"
            or query.get("code_challenge_method") != "S256"
            or "openid" not in query.get("scope", "").split()
        ):
            return self._answer(request, web.Response(status=400, text="invalid authorization request"))
        if self.deny:
            back = f"{query['redirect_uri']}?{urlencode({'error': 'access_denied', 'state': query.get('state', '')})}"
            return self._answer(request, web.Response(status=302, headers={"Location": back}))
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(
            self.client_id, query["redirect_uri"], query["code_challenge"], query.get("nonce"), self.person
        )
        back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        return self._answer(request, web.Response(status=302, headers={"Location": back}))

    async def _token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        grant = self.grants.pop(str(form.get("code", "")), None)  # a code works once
        if not self._client_authenticated(request):
            return self._answer(request, web.json_response({"error": "invalid_client"}, status=401))
        if (
            grant is None
            or form.get("grant_type") != "authorization_code"
            or form.get("redirect_uri") != grant.redirect_uri
            or _s256(str(form.get("code_verifier", ""))) != grant.challenge
        ):
            return self._answer(request, web.json_response({"error": "invalid_grant"}, status=400))
        access_token = secrets.token_urlsafe(24)
        body = {"access_token": access_token, "token_type": "Bearer", "expires_in": 300, "id_token": self._id(grant)}
        return self._answer(request, web.json_response(body, headers={"Cache-Control": "no-store"}))

    def _client_authenticated(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Basic":
            return False
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        return unquote(client_id) == self.client_id and unquote(secret) == self.client_secret

    def _id(self, grant: Grant) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": grant.person.sub,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + 300,
            "email": grant.person.email,
            "email_verified": grant.person.email_verified,
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        claims |= self.claims
        key = self.stranger if self.sign_with_stranger else self.key
        if self.sign_with_unknown_kid:
            key = _key(f"forged-{secrets.token_hex(8)}")
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
