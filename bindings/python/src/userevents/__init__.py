"""Python bindings of the userevents toolkit (thin ctypes layer over its C libraries).

    import userevents

    with userevents.Client({"kafka.bootstrap.servers": "127.0.0.1:9092"}) as ue:
        ue.identify("user-42")
        ue.track("purchase", properties={"sku": "A-113", "amount": 19.9})

Modules: ``userevents.client`` (libuserevents, the SDK), ``userevents.enrich`` (libenrich:
the Kafka processor, its pure pipeline and Python stages), ``userevents.whsink`` (libwhsink:
the warehouse sink).
"""

from .client import Client, DeliveryReport, Outcome, PropertyValue, version
from .errors import (ClientClosedError, ConfigError, EnrichError, ErrorCode, EventTooLargeError,
                     InvalidArgumentError, QueueFullError, SinkError, SinkTimedOutError,
                     TimedOutError, UserEventsError)

__all__ = [
    "Client", "DeliveryReport", "Outcome", "PropertyValue", "version",
    "UserEventsError", "ErrorCode", "InvalidArgumentError", "ConfigError",
    "EventTooLargeError", "QueueFullError", "TimedOutError", "ClientClosedError",
    "EnrichError", "SinkError", "SinkTimedOutError",
]

try:  # the installed distribution's version (setup.py takes it from the repository's VERSION)
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _dist_version

    __version__ = _dist_version("userevents")
except PackageNotFoundError:  # imported from a source checkout without installing
    __version__ = "0+unknown"
