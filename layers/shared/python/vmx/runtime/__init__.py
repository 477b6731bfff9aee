"""A Lambda runtime client for Python that streams: see `vmx.runtime.client`."""
