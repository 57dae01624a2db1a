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
__version__ = "0.1.0"
