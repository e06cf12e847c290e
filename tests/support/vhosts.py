"""Create prefixed copies of the local vhosts with the (topic) permissions of definitions.json.

    python -m tests.support.vhosts PREFIX     # e.g. "h1-": h1-party-a, h1-party-b, h1-party-c

Used to run test sessions side by side on one broker (GW_TEST_VHOST_PREFIX=PREFIX).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DEFINITIONS = Path(__file__).parents[2] / "deploy" / "rabbitmq" / "definitions.json"


def copy_vhosts(prefix: str) -> None:
    definitions = json.loads(DEFINITIONS.read_text())
    for vhost in definitions["vhosts"]:
        subprocess.run(
            ["rabbitmqctl", "add_vhost", prefix + vhost["name"]], check=False, capture_output=True
        )
        _rabbitmqctl("set_permissions", prefix + vhost["name"], "guest", ".*", ".*", ".*")
    for perm in definitions["permissions"]:
        fields = (perm["user"], perm["configure"], perm["write"], perm["read"])
        _rabbitmqctl("set_permissions", prefix + perm["vhost"], *fields)
    for topic in definitions.get("topic_permissions", []):
        fields = (topic["user"], topic["exchange"], topic["write"], topic["read"])
        _rabbitmqctl("set_topic_permissions", prefix + topic["vhost"], *fields)


def _rabbitmqctl(command: str, vhost: str, *args: str) -> None:
    subprocess.run(["rabbitmqctl", command, "-p", vhost, *args], check=True, capture_output=True)


if __name__ == "__main__":
    copy_vhosts(sys.argv[1])
