"""The local endpoint: RunPod's serverless API on this machine, with real SDK workers behind it."""
