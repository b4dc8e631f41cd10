"""The command the conformance suite runs per client scenario (standard library only, so it
starts in milliseconds): hands the scenario server's URL (the last argument), the scenario name
and its context to the driver app (`client_driver.driver_app`) at ``$CONFORMANCE_DRIVER_URL``,
prints what it says, and exits 0 when the request succeeded, else 1."""

import json
import os
import sys
import urllib.request


def main() -> int:
    body = {
        "url": sys.argv[-1],
        "scenario": os.environ.get("MCP_CONFORMANCE_SCENARIO", ""),
        "context": json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}"),
    }
    request = urllib.request.Request(
        os.environ["CONFORMANCE_DRIVER_URL"] + "/run",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        result = json.load(answer)
    print(result["detail"])
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
