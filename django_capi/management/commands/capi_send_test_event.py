"""``manage.py capi_send_test_event``: verify an installation in Events Manager's Test events."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

import django_capi
from django_capi.datasets.sample_event import TestEventError, send_test_event
from django_capi.transports.base import SendResult, get_transport


class Command(BaseCommand):
    help = (
        "Send one test event to a dataset with its test event code, synchronously through the "
        "configured transport, and print Meta's reply (events_received, fbtrace_id, or the "
        "error), and append it to the delivery attempt log. Exits with status 1 when Meta does "
        "not accept it. The token is never printed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", help="Dataset (pixel) id; default: CAPI['PIXEL_ID'].")
        parser.add_argument(
            "--test-event-code",
            help="The code shown in Events Manager > Test events (overrides TEST_EVENT_CODE).",
        )
        parser.add_argument("--event-name", default="PageView", help="Default: PageView.")
        parser.add_argument(
            "--email",
            default="test@example.com",
            help="Customer email sent (normalized and hashed), for a matchable event.",
        )
        parser.add_argument(
            "--url",
            default="https://example.com/django-capi-test",
            help="event_source_url of the website event.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        transport = get_transport()
        self.stdout.write(f"Sending {options['event_name']} via {type(transport).__name__}...")
        try:
            dataset, payload, result = send_test_event(
                options["dataset"],
                test_event_code=options["test_event_code"],
                event_name=options["event_name"],
                email=options["email"],
                url=options["url"],
                user_agent=f"django-capi/{django_capi.__version__} (capi_send_test_event)",
            )
        except TestEventError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Sent {payload['event_name']} (event_id {payload['event_id']}) to dataset "
            f"{dataset.dataset_id} with test event code {dataset.test_event_code}."
        )
        self.report(result)

    def report(self, result: SendResult) -> None:
        """Print Meta's reply; raise CommandError (exit status 1) unless it was accepted."""
        http = f"HTTP {result.http_status}" if result.http_status is not None else "no response"
        if result.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Meta accepted it ({http}): events_received={result.events_received}, "
                    f"fbtrace_id={result.fbtrace_id or '-'}"
                )
            )
            for message in result.messages:
                self.stdout.write(f"  message: {message}")
            self.stdout.write("Open Events Manager > Test events to see it arrive.")
            return
        lines = [f"Meta did not accept the test event ({http}, outcome {result.outcome.value})."]
        error = result.error
        if error is not None:
            code = "-" if error.code is None else str(error.code)
            if error.subcode is not None:
                code += f"/{error.subcode}"
            lines.append(f"  code: {code} {error.type}".rstrip())
            for label, value in (
                ("title", error.user_title),
                ("detail", error.user_msg),
                ("message", error.message),
            ):
                if value:
                    lines.append(f"  {label}: {value}")
        if result.network_error:
            lines.append(f"  network: {result.network_error}")
        if result.fbtrace_id:
            lines.append(f"  fbtrace_id: {result.fbtrace_id}")
        self.stdout.write("\n".join(lines))
        raise CommandError("the test event was not accepted", returncode=1)
