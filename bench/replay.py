"""The replay rate: ``python -m bench.replay --count 100000`` (issue 15: >= 5,000 records/s).

Builds SCO-RATS's archive with ``--count`` received ``information.share`` envelopes, each
signed by CICA's benchmark key and appended through the archive's own API
(``ArchiveStore.append``, SQLite in a temporary directory, as the benchmark's gateways use),
behind the liaison assignment that accredits their officer. Then it starts SCO-RATS's gateway
on that archive (``gateway run`` on the ``<prefix>party-b`` vhost) and times
``gateway replay --target deliver --type information.share`` as an operator runs it, from the
start of the command to its exit, with every answer awaited and every re-delivery counted on a
back-office queue bound to ``gw.deliver``. ``--profile`` records both processes with py-spy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import broker, profiles
from bench.broker import Vhosts
from bench.gateways import GATEWAY_BIN, GatewayProcess, key_id, make_keys
from bench.messages import OFFICER, share
from gateway import topology
from gateway.archive import Entry, open_archive
from gateway.core import canonical
from gateway.core.keys import SigningKey, load_signing_key
from gateway.logs import configure_logging
from gateway.workers.arrivals import envelope_key
from tests.gateway.trust_helpers import assignment_envelope, signed

INBOX = "bench.replayed"
APPEND_BATCH = 1_000


def received(envelope: dict[str, object], at: datetime) -> Entry:
    """The archive entry of an accepted envelope, as SCO-RATS's inbound worker writes it."""
    originator = envelope["originator"]
    assert isinstance(originator, dict)
    signature = envelope["signature"]
    assert isinstance(signature, dict)
    return Entry(
        kind="envelope.in",
        outcome="delivered",
        occurred_at=at,
        payload=canonical.dumps(envelope),
        message_id=f"frame-{envelope['id']}",
        envelope_id=str(envelope["id"]),
        type=str(envelope["type"]),
        provider=str(originator["party"]),
        recipient=str(envelope["recipient"]),
        correlation_id=envelope.get("correlation_id"),  # type: ignore[arg-type]
        signature=str(signature["value"]),
        dedup_key=envelope_key(str(originator["party"]), str(envelope["id"])),
    )


async def build_archive(path: Path, key: SigningKey, count: int) -> float:
    """``count`` received shares behind their officer's assignment; seconds taken."""
    started = time.monotonic()
    created = datetime.now(UTC) - timedelta(minutes=5)
    store = open_archive(f"sqlite:///{path}")
    await store.open()
    try:
        accredit = assignment_envelope(key, OFFICER, created_at=created - timedelta(minutes=1))
        await store.append([received(accredit, created)])
        for first in range(0, count, APPEND_BATCH):
            batch = []
            for n in range(first, min(count, first + APPEND_BATCH)):
                body = share(n)
                envelope = signed(
                    key,
                    body=body["body"],
                    officer=OFFICER,
                    created_at=created,
                    correlation_id=body["correlation_id"],
                )
                batch.append(received(envelope, created))
            await store.append(batch)
    finally:
        await store.close()
    return time.monotonic() - started


async def inbox_count(vhosts: Vhosts) -> int:
    return (await broker.queue_state(vhosts.b, INBOX)).messages


async def run_replay(config: Path, workdir: Path, *, profile: bool) -> tuple[float, int, str]:
    """Run ``gateway replay``; its seconds, how many answers said replayed, its stderr's end.
    With ``profile``, under py-spy (its samples in ``cli.raw``)."""
    spy = [profiles.py_spy(), "record", "--rate", "200", "--format", "raw", "--nonblocking"]
    argv = [*spy, "--output", str(workdir / "cli.raw"), "--"] if profile else []
    argv += [
        str(GATEWAY_BIN),
        "replay",
        "--config",
        str(config),
        "--target",
        "deliver",
        "--type",
        "information.share",
        "--format",
        "jsonl",
        "--timeout",
        "120",
    ]
    out, err = workdir / "replay.jsonl", workdir / "replay.err"
    started = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(*argv, stdout=stdout, stderr=stderr)
        status = await process.wait()
    seconds = time.monotonic() - started
    replayed = 0
    for line in out.read_text().splitlines():
        if not line.startswith("{"):  # py-spy's own lines
            continue
        answer = json.loads(line).get("answer") or {}
        replayed += answer.get("status") == "replayed"
    tail = err.read_text(errors="replace")[-600:]
    if status != 0:
        raise RuntimeError(f"gateway replay exited with {status}: {tail}")
    return seconds, replayed, tail


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    vhosts = Vhosts(args.vhost_prefix)
    await broker.wait_reachable()
    await broker.ensure_vhosts(vhosts)
    await broker.provision(vhosts)
    for vhost in vhosts.all():
        await broker.purge(vhost, (*broker.GATEWAY_QUEUES, topology.CONTROL))
    await broker.declare_queue(vhosts.b, INBOX, bind_to=(topology.DELIVER, "CICA.#"))
    await broker.purge(vhosts.b, (INBOX,))
    keys = workdir / "keys"
    keys.mkdir()
    make_keys(keys)
    gateway = GatewayProcess("SCO-RATS", vhosts, keys, workdir)
    cica_key = load_signing_key(keys / f"{key_id('CICA')}.key")
    built = await build_archive(workdir / "sco-rats.db", cica_key, args.count)
    print(json.dumps({"archive_built_s": round(built, 1), "records": args.count}), flush=True)
    spies: list[profiles.Profiler] = []
    await gateway.start_ready(timeout=600)
    try:
        if args.profile:
            spies.append(profiles.Profiler(gateway.pid, workdir / "gateway.raw"))
            spies[-1].start()
        seconds, replayed, tail = await run_replay(
            workdir / "sco-rats.toml", workdir, profile=args.profile
        )
        for spy in spies:
            await spy.stop()
        delivered = await inbox_count(vhosts)
    finally:
        await gateway.stop()
        await broker.delete_queue(vhosts.b, INBOX)
    result: dict[str, object] = {
        "records": args.count,
        "seconds": round(seconds, 2),
        "records_per_s": round(args.count / seconds),
        "answered_replayed": replayed,
        "delivered": delivered,
    }
    if replayed != args.count or delivered != args.count:
        result["stderr_tail"] = tail
    for title, raw in (("gateway (SCO-RATS)", "gateway.raw"), ("gateway replay", "cli.raw")):
        if args.profile:
            print(profiles.format_summary(title, profiles.summarise(workdir / raw), 200))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--vhost-prefix", default="bench-")
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args()
    configure_logging("json", level="warning")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(measure(args, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="gw-replay-") as directory:
            result = asyncio.run(measure(args, Path(directory)))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
