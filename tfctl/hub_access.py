"""Whether the Hugging Face Hub can be reached, decided once and fast, before a dataset or task loads.

Without network, `datasets` and lm-eval retry each request for half a minute before they fail. So before
anything asks the Hub, tfctl checks: HF_HUB_OFFLINE / HF_DATASETS_OFFLINE set, or no connection to the Hub's
endpoint within a second and a half, means offline; then both variables are set for this process, and the
libraries load from their local caches at once, or fail at once naming what is missing.
"""

import os
import socket
import sys
import threading
from urllib.parse import urlparse

CONNECT_SECONDS = 1.5
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def _set(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _reachable(host: str, port: int, seconds: float) -> bool:
    """A TCP connection to host:port within `seconds`, name lookup included (run aside: it has no timeout)."""
    outcome = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=seconds).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(seconds)
    return bool(outcome and outcome[0])


def hub_offline() -> bool:
    """True when the Hub is not to be asked (set offline, or unreachable now); offline, the variables the
    Hugging Face libraries read are set so they go straight to their caches."""
    if any(_set(name) for name in OFFLINE_VARIABLES):
        offline = True
    else:
        from huggingface_hub import constants

        endpoint = urlparse(constants.ENDPOINT)
        port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
        offline = not _reachable(endpoint.hostname or "", port, CONNECT_SECONDS)
    if offline:
        for name in OFFLINE_VARIABLES:
            os.environ[name] = "1"
        for module in ("huggingface_hub.constants", "datasets.config"):  # they read the variables on import
            if module in sys.modules:
                for name in OFFLINE_VARIABLES:
                    setattr(sys.modules[module], name, True)
    return offline
