"""Loopback servers and stubs shared by the tests and the benchmarks (never shipped).

`fileserver.FileServer` (an HTTP file server with faults: cuts, delays, 404s, ranges),
`helpers` (manifests, payloads, local git repositories) and `stubs.StubBox` (run the container
scripts for real with stub programs). Benchmarks import these from here, never from tests/.
"""
