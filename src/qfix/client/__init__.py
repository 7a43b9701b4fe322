"""The client SDK: connect to a qfix server over QZMQ, send orders, follow their state."""

from qfix.client.aio import AsyncClient
from qfix.client.client import Client, ClientError, Report, ReportCallback
from qfix.client.tracker import OrderState, OrderTracker

__all__ = ["AsyncClient", "Client", "ClientError", "OrderState", "OrderTracker", "Report", "ReportCallback"]
