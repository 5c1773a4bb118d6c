"""Container healthcheck of the two APIs: exit 0 when the HTTP server at URL answers (any status
below 500), 1 otherwise. Standard library only. Pointed at /healthz, which touches neither
PostgreSQL nor Redis: their outages are /readyz's to report, and the APIs answer them with 503
and Retry-After.

    python docker/healthcheck.py http://127.0.0.1:8000/healthz
"""

import sys
import urllib.error
import urllib.request


def main(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code  # a 4xx still proves the server answers
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 1
    if status >= 500:
        print(f"{url}: HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
