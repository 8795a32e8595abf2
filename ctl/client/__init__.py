"""API client library: async :class:`Client`, :class:`SyncClient`, kubeconfig handling and informers."""

from ctl.client.aio import ApiError, Client, WatchExpired, kind_of_object, resolve_kind
from ctl.client.kubeconfig import ClientConfig, ConfigError
from ctl.client.sync import SyncClient

__all__ = [
    "ApiError",
    "Client",
    "ClientConfig",
    "ConfigError",
    "SyncClient",
    "WatchExpired",
    "kind_of_object",
    "resolve_kind",
]
