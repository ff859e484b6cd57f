"""Signing in to the console through an organisation's own identity provider (OpenID Connect).

The authorization-code flow with PKCE, with authlib's OAuth 2 and OpenID Connect parts (the
authorization URL, the PKCE challenge, the token request, the ID token's claims) and joserfc (the
signature). The HTTP goes through aiohttp, as everywhere in the service: authlib's httpx client
warns that it is deprecated for httpx (it wants httpx2), and warnings are errors here.

- ``begin`` reads the provider's settings (``<issuer>/.well-known/openid-configuration``, kept a while by
  ``oidc_cache.ProviderCache``, as the key set is), draws a
  state, a nonce and a PKCE verifier, keeps them in Redis under the state's hash for
  ``PENDING_SECONDS`` (with the console's language) and returns the provider's authorization URL.
- ``finish`` takes the pending sign-in out (``GETDEL``: a state works once), exchanges the code for
  tokens (with the verifier: a code stolen on its way back is useless), and checks the ID token:
  its signature against the provider's JWKS, its issuer, audience (this client), expiry and nonce. A
  token naming a key (``kid``) the kept JWKS lacks has the JWKS read again first (the provider
  rotated its keys), as often as ``ProviderCache.renewable`` allows.
  It returns the e-mail address only when the provider says it is verified.

Every refusal is a ``Refused`` carrying its ``Refusal``; which actor the address is, and the
session it opens, are the API's (``dispatcher.api.oidc``). Nothing here creates an account.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast
from urllib.parse import quote

import aiohttp
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry, extract_compact
from redis.asyncio import Redis

from config import Settings
from dispatcher.access.oidc_cache import Fetched, ProviderCache, max_age
from dispatcher.core.models import Language
from dispatcher.storage.keys import Keys

#: How long a sign-in may stay at the provider (seconds) before its state is forgotten.
PENDING_SECONDS = 600
#: Seconds of clock difference with the provider accepted on ``exp`` and ``iat``.
LEEWAY = 60
#: Seconds a call to the provider may take.
TIMEOUT = 10.0


class Refusal(StrEnum):
    """Why a sign-in through the identity provider was refused (in the audit's detail)."""

    STATE = "state"  # unknown, spent, expired, or not this browser's
    PROVIDER = "provider"  # the provider refused the code (spent, wrong) or could not be reached
    TOKEN = "token"  # the ID token's signature, issuer, audience, expiry or nonce is wrong
    UNVERIFIED = "email_unverified"  # no e-mail address, or one the provider has not verified
    UNKNOWN = "unknown_email"  # a verified address, but no coordinator or officer has it


class Refused(Exception):
    """A sign-in refused; ``language`` is the console's when the state was known."""

    def __init__(self, refusal: Refusal, language: Language | None = None) -> None:
        super().__init__(refusal.value)
        self.refusal, self.language = refusal, language


@dataclass(frozen=True)
class Identity:
    """A verified e-mail address, and the language the console was in when its sign-in began."""

    email: str
    language: Language


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _kid(id_token: object) -> str | None:
    """The key an ID token says it is signed with (unverified: only to pick the key), if it says."""
    try:
        kid = extract_compact(str(id_token).encode()).headers().get("kid")
    except (JoseError, ValueError):
        return None  # not a JWS: the verification refuses it
    return kid if isinstance(kid, str) else None


class OpenIdConnect:
    """The sign-in flow with the provider of ``PLP_OIDC_ISSUER``; ``redirect_uri``: this service's callback;
    ``cache``: the web process's, which keeps the provider's documents from one sign-in to the next."""

    def __init__(
        self, settings: Settings, redis: Redis, keys: Keys, *, redirect_uri: str, cache: ProviderCache
    ) -> None:
        if not settings.oidc_enabled:
            raise ValueError("PLP_OIDC_ISSUER, PLP_OIDC_CLIENT_ID and PLP_OIDC_CLIENT_SECRET are not all set")
        self.settings, self.redis, self.keys, self.redirect_uri = settings, redis, keys, redirect_uri
        self.cache = cache

    def _http(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT), raise_for_status=True)

    async def _document(self, http: aiohttp.ClientSession, url: str) -> Fetched:
        async with http.get(url, headers={"Accept": "application/json"}) as response:
            body = await response.json(content_type=None)
            if not isinstance(body, dict):
                raise ValueError(f"{url} is not a JSON object")
            return Fetched(body, max_age(response.headers.get("Cache-Control")))

    async def _metadata(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        url = f"{self.settings.oidc_issuer}/.well-known/openid-configuration"
        return await self.cache.read(url, lambda: self._document(http, url))

    async def _jwks(self, http: aiohttp.ClientSession, url: str, *, kid: str | None) -> dict[str, Any]:
        """The provider's key set, read again (when allowed) if it lacks the key ``kid`` names."""
        jwks = await self.cache.read(url, lambda: self._document(http, url))
        if kid is None or kid in {key.get("kid") for key in jwks.get("keys", []) if isinstance(key, dict)}:
            return jwks
        # Not renewable: another sign-in may be renewing it right now; the read waits for that one.
        return await self.cache.read(url, lambda: self._document(http, url), renew=self.cache.renewable(url))

    def _authorization_url(self, endpoint: str, *, state: str, nonce: str, verifier: str) -> str:
        return str(
            prepare_grant_uri(
                endpoint,
                client_id=self.settings.oidc_client_id,
                response_type="code",
                redirect_uri=self.redirect_uri,
                scope=self.settings.oidc_scopes,
                state=state,
                nonce=nonce,
                code_challenge=create_s256_code_challenge(verifier),
                code_challenge_method="S256",
            )
        )

    async def _tokens(self, http: aiohttp.ClientSession, endpoint: str, *, code: str, verifier: str) -> dict[str, Any]:
        body = prepare_token_request(
            "authorization_code", code=code, redirect_uri=self.redirect_uri, code_verifier=verifier
        )
        # client_secret_basic, the default of RFC 6749: each part form-encoded first (its section 2.3.1).
        secret = self.settings.oidc_client_secret
        login, password = self.settings.oidc_client_id or "", secret.get_secret_value() if secret else ""
        pair = f"{quote(login, safe='')}:{quote(password, safe='')}"
        headers = {
            "Authorization": f"Basic {base64.b64encode(pair.encode()).decode()}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        async with http.post(endpoint, data=body, headers=headers) as response:
            return cast(dict[str, Any], await response.json(content_type=None))

    async def begin(self, language: Language) -> tuple[str, str]:
        """The provider's authorization URL to send the browser to, and the state (for the browser's cookie).
        Raises ``aiohttp.ClientError`` (or ``TimeoutError``, ``KeyError``) when the provider cannot be read."""
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(48)
        async with self._http() as http:
            metadata = await self._metadata(http)
        url = self._authorization_url(metadata["authorization_endpoint"], state=state, nonce=nonce, verifier=verifier)
        pending = {"nonce": nonce, "verifier": verifier, "language": language.value}
        await self.redis.set(self.keys.oidc_state(_digest(state)), json.dumps(pending), ex=PENDING_SECONDS)
        return url, state

    async def forget(self, state: str) -> None:
        """Drop a pending sign-in (the provider answered with an error): its state cannot be used any more."""
        await self.redis.delete(self.keys.oidc_state(_digest(state)))

    async def finish(self, *, state: str, code: str) -> Identity:
        """The verified e-mail address of the person the provider sent back; raises ``Refused``."""
        raw = await self.redis.getdel(self.keys.oidc_state(_digest(state)))
        if raw is None:
            raise Refused(Refusal.STATE)
        pending = json.loads(raw)
        language = Language(pending["language"])
        try:
            claims = await self._claims(code, pending)
        except Refused as refused:
            raise Refused(refused.refusal, language) from refused
        email = claims.get("email")
        if not isinstance(email, str) or claims.get("email_verified") is not True:
            raise Refused(Refusal.UNVERIFIED, language)
        return Identity(email=email, language=language)

    async def _claims(self, code: str, pending: dict[str, str]) -> CodeIDToken:
        async with self._http() as http:
            try:
                metadata = await self._metadata(http)
                token = await self._tokens(http, metadata["token_endpoint"], code=code, verifier=pending["verifier"])
                if "id_token" not in token:
                    raise Refused(Refusal.PROVIDER)
                jwks = await self._jwks(http, metadata["jwks_uri"], kid=_kid(token["id_token"]))
            except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
                raise Refused(Refusal.PROVIDER) from exc
        return self._verified(token, jwks, metadata, nonce=pending["nonce"])

    def _verified(
        self, token: dict[str, Any], jwks: dict[str, Any], metadata: dict[str, Any], *, nonce: str
    ) -> CodeIDToken:
        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.settings.oidc_issuer},
            "aud": {"essential": True, "value": self.settings.oidc_client_id},
        }
        params = {"nonce": nonce, "client_id": self.settings.oidc_client_id, "access_token": token.get("access_token")}
        try:
            decoded = jwt.decode(
                token["id_token"],
                KeySet.import_key_set(jwks),  # type: ignore[arg-type]
                registry=JWSRegistry(algorithms=[a for a in algorithms if a != "none"]),
            )
            claims = CodeIDToken(decoded.claims, decoded.header, options, params)
            claims.validate(leeway=LEEWAY)
        except (JoseError, ValueError) as exc:
            raise Refused(Refusal.TOKEN) from exc
        return claims
