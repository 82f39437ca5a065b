"""``manage.py capi_send_test_event``: verify an installation in Events Manager's Test events."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

import django_capi
from django_capi import conf
from django_capi.normalization.user_data import normalize_user_data
from django_capi.transports.base import SendResult, get_transport
from django_capi.validation import validate_event


class Command(BaseCommand):
    help = (
        "Send one test event to a dataset with its test event code, synchronously through the "
        "configured transport, and print Meta's reply (events_received, fbtrace_id, or the "
        "error). Exits with status 1 when Meta does not accept it. The token is never printed."
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
        dataset_id = options["dataset"] or conf.default_dataset_id()
        if not dataset_id:
            raise CommandError("No dataset: pass --dataset or set CAPI['PIXEL_ID'].")
        dataset = conf.get_dataset(dataset_id)
        if dataset is None:
            raise CommandError(f"Dataset {dataset_id} is not configured in CAPI.")
        code = options["test_event_code"] or dataset.test_event_code
        if not code:
            raise CommandError(
                "No test event code: pass --test-event-code (Events Manager > your dataset > "
                "Test events) or set TEST_EVENT_CODE. Without one the event would count as real."
            )
        dataset = dataclasses.replace(dataset, test_event_code=code)

        user_agent = f"django-capi/{django_capi.__version__} (capi_send_test_event)"
        user_data = normalize_user_data(
            {"em": options["email"], "client_user_agent": user_agent},
            default_country=dataset.default_country,
        )
        payload: dict[str, Any] = {
            "event_name": options["event_name"],
            "event_time": int(timezone.now().timestamp()),
            "event_id": f"capi-test-{uuid.uuid4().hex}",
            "action_source": "website",
            "event_source_url": options["url"],
            "user_data": user_data.data,
        }
        issues = validate_event(payload)
        if issues:
            raise CommandError("The test event is invalid: " + "; ".join(map(str, issues)))

        transport = get_transport()
        self.stdout.write(
            f"Sending {payload['event_name']} (event_id {payload['event_id']}) to dataset "
            f"{dataset.dataset_id} with test event code {code} via {type(transport).__name__}..."
        )
        result = transport.send(dataset, [payload])
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
