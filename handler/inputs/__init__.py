"""Inputs given by URL: the address guard, the pinned connection, the downloads.

Importing the package loads nothing heavy; `handler.inputs.download` pulls in aiohttp and boto3.
"""
