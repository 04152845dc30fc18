"""Build a destination from routing settings plus the environment.

Secrets are never in settings: settings name the environment variable (``api_token_env`` etc.), with
defaults JIRA_API_TOKEN, FRESHSERVICE_API_KEY, SLACK_WEBHOOK_URL, TRIAGE_OUTBOUND_WEBHOOK_SECRET. URLs
come only from settings/env, never from a ticket (no SSRF), and must be https except on loopback (local
stack, tests). Base URLs carry no path, with one exception: Jira's scoped-token gateway
``https://api.atlassian.com/ex/jira/<cloudId>``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from triage.route.destinations.base import Destination, DestinationConfigError
from triage.route.destinations.freshservice import FreshserviceDestination
from triage.route.destinations.http import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, HttpSettings
from triage.route.destinations.jira import DEFAULT_PRIORITY_MAP, JiraDestination
from triage.route.destinations.log import LogDestination
from triage.route.destinations.slack import SlackDestination
from triage.route.destinations.webhook import WebhookDestination

Settings = Mapping[str, Any]
Env = Mapping[str, str]

# Scoped (service-account) Atlassian tokens must call the gateway, not the site: https://support.atlassian.com/
# atlassian-account/docs/manage-api-tokens-for-your-atlassian-account/. A cloud id is a UUID.
ATLASSIAN_GATEWAY = "https://api.atlassian.com"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_CLOUD_ID = re.compile(_UUID)
_JIRA_GATEWAY_PATH = re.compile(rf"/ex/jira/{_UUID}/?", re.IGNORECASE)


def _secret(settings: Settings, env: Env, key: str, default_env: str) -> str:
    name = str(settings.get(key) or default_env)
    value = env.get(name, "")
    if not value.strip():
        raise DestinationConfigError(f"missing secret: environment variable {name} is not set")
    return value.strip()


def _value(settings: Settings, env: Env, key: str, env_name: str, what: str) -> str:
    value = settings.get(key) or env.get(env_name, "")
    if not str(value).strip():
        raise DestinationConfigError(f"missing {what}: set '{key}' in settings or {env_name}")
    return str(value).strip()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str, *, base: bool, path: re.Pattern[str] | None = None) -> str:
    """Reject non-https (except loopback), embedded credentials and, for base URLs, queries and any path but
    one that fully matches ``path``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise DestinationConfigError(f"{what} must be an absolute http(s) URL")
    if parts.scheme == "http" and not _is_loopback(host):
        raise DestinationConfigError(f"{what} must use https")
    if parts.username or parts.password:
        raise DestinationConfigError(f"{what} must not embed credentials")
    bare = parts.path in ("", "/") or (path is not None and path.fullmatch(parts.path) is not None)
    if base and (parts.query or parts.fragment or not bare):
        raise DestinationConfigError(f"{what} must be a bare base URL such as https://example.atlassian.net")
    return url.rstrip("/") if base else url


def _http(settings: Settings) -> HttpSettings:
    return HttpSettings(
        connect_timeout=float(settings.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
        read_timeout=float(settings.get("read_timeout", DEFAULT_READ_TIMEOUT)),
    )


def _optional_int(settings: Settings, key: str) -> int | None:
    value = settings.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DestinationConfigError(f"'{key}' must be an integer") from None


def _optional_seconds(settings: Settings, key: str) -> float | None:
    value = settings.get(key)
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise DestinationConfigError(f"'{key}' must be a number of seconds") from None
    if not 0 <= seconds <= 3600:
        raise DestinationConfigError(f"'{key}' must be between 0 and 3600 seconds")
    return seconds


def _search_lag(settings: Settings) -> dict[str, float]:
    """``search_lag_s`` for a searchable destination, when settings override the adapter's default."""
    lag = _optional_seconds(settings, "search_lag_seconds")
    return {} if lag is None else {"search_lag_s": lag}


def _jira_api_base(settings: Settings, env: Env) -> str | None:
    """Where Jira REST calls go when not to the site: ``cloud_id`` (the gateway for that cloud) or an explicit
    ``api_base_url`` that must be the gateway shape (or loopback, for the local stub)."""
    cloud_id = str(settings.get("cloud_id") or env.get("JIRA_CLOUD_ID", "")).strip().lower()
    api_base = str(settings.get("api_base_url") or env.get("JIRA_API_BASE_URL", "")).strip()
    if cloud_id and api_base:
        raise DestinationConfigError("jira: set either 'cloud_id' or 'api_base_url', not both")
    if cloud_id:
        if not _CLOUD_ID.fullmatch(cloud_id):
            raise DestinationConfigError("jira 'cloud_id' must be a UUID (see <site>/_edge/tenant_info)")
        return f"{ATLASSIAN_GATEWAY}/ex/jira/{cloud_id}"
    if not api_base:
        return None
    url = check_url(api_base, "Jira api_base_url", base=True, path=_JIRA_GATEWAY_PATH)
    parts = urlsplit(url)
    if parts.path and parts.hostname != "api.atlassian.com" and not _is_loopback(parts.hostname or ""):
        raise DestinationConfigError(
            "Jira api_base_url with a path must be https://api.atlassian.com/ex/jira/<cloudId>"
        )
    return url


def _jira(settings: Settings, env: Env) -> Destination:
    base_url = check_url(
        _value(settings, env, "base_url", "JIRA_BASE_URL", "Jira base URL"), "Jira base_url", base=True
    )
    project_key = str(settings.get("project_key") or "").strip()
    if not project_key.isalnum():
        raise DestinationConfigError("jira 'project_key' is required (letters/digits, e.g. OPS)")
    priority_map = {**DEFAULT_PRIORITY_MAP, **dict(settings.get("priority_map") or {})}
    return JiraDestination(
        base_url=base_url,
        email=_value(
            settings, env, "email", str(settings.get("email_env") or "JIRA_EMAIL"), "Jira account email"
        ),
        api_token=_secret(settings, env, "api_token_env", "JIRA_API_TOKEN"),
        project_key=project_key,
        issue_type=str(settings.get("issue_type") or "Task"),
        priority_map=priority_map,
        set_priority=bool(settings.get("set_priority", True)),
        http=_http(settings),
        api_base_url=_jira_api_base(settings, env),
        **_search_lag(settings),
    )


def _freshservice(settings: Settings, env: Env) -> Destination:
    base_url = check_url(
        _value(settings, env, "base_url", "FRESHSERVICE_BASE_URL", "Freshservice base URL"),
        "Freshservice base_url",
        base=True,
    )
    return FreshserviceDestination(
        base_url=base_url,
        api_key=_secret(settings, env, "api_key_env", "FRESHSERVICE_API_KEY"),
        group_id=_optional_int(settings, "group_id"),
        source=_optional_int(settings, "source") or 2,
        workspace_id=_optional_int(settings, "workspace_id"),
        triage_id_field=settings.get("triage_id_field") or None,
        custom_fields=dict(settings.get("custom_fields") or {}),
        http=_http(settings),
        **_search_lag(settings),
    )


def _slack(settings: Settings, env: Env) -> Destination:
    url = check_url(
        _secret(settings, env, "webhook_url_env", "SLACK_WEBHOOK_URL"), "Slack webhook URL", base=False
    )
    return SlackDestination(webhook_url=url, http=_http(settings))


def _webhook(settings: Settings, env: Env) -> Destination:
    url_env = str(settings.get("url_env") or "TRIAGE_OUTBOUND_WEBHOOK_URL")
    url = check_url(_value(settings, env, "url", url_env, "webhook URL"), "webhook url", base=False)
    return WebhookDestination(
        url=url,
        secret=_secret(settings, env, "secret_env", "TRIAGE_OUTBOUND_WEBHOOK_SECRET"),
        include_email=bool(settings.get("include_email", False)),
        http=_http(settings),
    )


def _log(settings: Settings, env: Env) -> Destination:
    return LogDestination()


BUILDERS: Mapping[str, Callable[[Settings, Env], Destination]] = {
    "jira": _jira,
    "freshservice": _freshservice,
    "slack": _slack,
    "webhook": _webhook,
    "log": _log,
}


def build_destination(system: str, settings: Settings, env: Env) -> Destination:
    """A ready destination for ``system``; raises DestinationConfigError naming what is missing."""
    builder = BUILDERS.get(system)
    if builder is None:
        raise DestinationConfigError(
            f"unknown destination system {system!r}; expected one of {sorted(BUILDERS)}"
        )
    return builder(settings or {}, env)
