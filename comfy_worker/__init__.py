"""comfy-worker: a client and CLI for RunPod endpoints, and a local endpoint that speaks RunPod's API."""

from .client import EndpointClient, EndpointError, JobStatus

__all__ = ["EndpointClient", "EndpointError", "JobStatus"]
