"""Test-only LiteLLM custom auth (general_settings.custom_auth): without a database, the bearer
token names the caller's team and key alias, e.g. `Authorization: Bearer team=research-nlp,key=k1`.
"""

from fastapi import Request
from litellm.proxy._types import UserAPIKeyAuth


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    fields = dict(part.split("=", 1) for part in api_key.split(",") if "=" in part)
    return UserAPIKeyAuth(
        api_key=api_key,
        team_id=fields.get("team"),
        team_alias=fields.get("team"),
        key_alias=fields.get("key"),
    )
