"""``gateway submit FILE|-``: a back-office system's submission from a shell script.

Validates the JSON document against the contract, publishes it to ``gw.submit`` with the AMQP
properties a plain ``amqp-publish`` cannot set (``message_id``, ``user_id``) and, with
``--wait``, waits for its final status. The broker URL (the system's own user) comes from
``--url`` or ``$GATEWAY_SUBMIT_URL``, so that the password need not be on the command line;
an ``amqps://`` URL takes the gateway's TLS options (``gateway.cli.submit_tls``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from gateway.cli.submit_tls import TlsUsageError, add_tls_options, tls_context

if TYPE_CHECKING:
    import ssl

    from contracts import Submission

URL_VARIABLE: Final = "GATEWAY_SUBMIT_URL"

EXIT_DELIVERED = 0  # published (without --wait), or delivered
EXIT_REFUSED = 1  # the gateway rejected or blocked it; the status event is printed
EXIT_USAGE = 2  # bad arguments, an unreadable file, no broker URL, TLS files missing or unsafe
EXIT_INVALID = 3  # refused locally by the contract: nothing was published
EXIT_TIMEOUT = 4  # no final status within --wait seconds
EXIT_BROKER = 5  # the broker could not be reached, refused the login, or did not confirm

EPILOG = (
    f"exit status: {EXIT_DELIVERED} published (delivered, with --wait); {EXIT_REFUSED} rejected "
    f"or blocked by the gateway; {EXIT_USAGE} usage; {EXIT_INVALID} invalid locally, nothing "
    f"published; {EXIT_TIMEOUT} no final status in time; {EXIT_BROKER} broker unreachable or "
    "login refused"
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    submit = commands.add_parser(
        "submit",
        help="validate a submission and publish it to gw.submit as a back-office system",
        epilog=EPILOG,
    )
    submit.add_argument("file", metavar="FILE|-", help="the submission JSON document; - = stdin")
    submit.add_argument(
        "--url",
        default=os.environ.get(URL_VARIABLE),
        help=f"AMQP URL of the system's own broker user (default: ${URL_VARIABLE})",
    )
    submit.add_argument(
        "--message-id",
        help="the idempotency key (default: a fresh one); re-use it to retry safely",
    )
    submit.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="wait this long for delivered/rejected/blocked and print the status event",
    )
    add_tls_options(submit)
    submit.set_defaults(handler=_submit)


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    return Path(file).read_bytes()


def _submit(args: argparse.Namespace) -> int:
    from contracts import ContractError, parse_submission

    if not args.url:
        print(f"gateway submit: no broker URL: pass --url or set ${URL_VARIABLE}", file=sys.stderr)
        return EXIT_USAGE
    try:
        context = tls_context(args.url, args)
    except TlsUsageError as exc:
        print(f"gateway submit: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        document = _read(args.file)
    except OSError as exc:
        print(f"gateway submit: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        submission = parse_submission(document)
    except ContractError as exc:
        print(f"gateway submit: {exc.code}: {exc.message} (nothing published)", file=sys.stderr)
        return EXIT_INVALID
    return asyncio.run(_publish(args.url, context, submission, args.message_id, args.wait))


async def _publish(
    url: str,
    context: ssl.SSLContext | None,
    submission: Submission,
    message_id: str | None,
    wait: float | None,
) -> int:
    from gateway.broker_errors import BROKER_ERRORS, describe_broker_error
    from gateway.submission_client import SubmissionClient

    # Failures are reported below as one line; the AMQP libraries' own warnings would repeat
    # them as tracebacks on stderr.
    for library in ("aio_pika", "aiormq"):
        logging.getLogger(library).setLevel(logging.CRITICAL)
    client = SubmissionClient(url, ssl_context=context)
    try:
        async with client:
            message_id = await client.submit(submission, message_id)
            if wait is None:
                print(message_id)
                return EXIT_DELIVERED
            event = await client.wait_status(message_id, timeout=wait)
    except TimeoutError:
        print(
            f"gateway submit: no final status for {message_id} within {wait:g} s",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    except BROKER_ERRORS as exc:
        print(f"gateway submit: {describe_broker_error(exc, url)}", file=sys.stderr)
        return EXIT_BROKER
    print(event.model_dump_json())
    return EXIT_DELIVERED if event.status == "delivered" else EXIT_REFUSED
