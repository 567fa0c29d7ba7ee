"""Delivery of output files: inline base64 today, object storage beside it (issue 3)."""

from .base import Delivery, OutputFile
from .inline import InlineDelivery

__all__ = ["Delivery", "InlineDelivery", "OutputFile"]
