"""Container healthcheck of the two APIs: exit 0 when the HTTP server at URL answers (any status
below 500), 1 otherwise. Standard library only; never touches PostgreSQL or Redis, whose outages
the APIs report themselves (503 with Retry-After).

    python docker/healthcheck.py http://127.0.0.1:8000/api/v1/analytics/capture/
"""

import sys
import urllib.error
import urllib.request


def main(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code  # a 405 from GET capture/ still proves the server answers
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 1
    if status >= 500:
        print(f"{url}: HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
