"""target-pardot: the Singer target that keeps Pardot prospects in line with identify records.

How a run ends is decided here, around the SDK's own command rather than in a copy of it:

- input ends: the SDK drains every sink and relays the latest STATE; the summary is printed;
  exit 0.
- a failure that stops the run (`TargetPardotError`, malformed input): the summary, one
  `target-pardot stopped: ...` line saying what to fix, the quota note when Pardot's daily
  limit was the cause; exit 1. STATE is not relayed past what was applied. A broken input
  line ends the input there: the records read before it are applied and STATE relayed as at
  the end of input, then the run stops on that line.
- SIGTERM or SIGINT: no further input is read, the records already read are applied (the SDK
  drains the sinks and relays STATE as at the end of input), the summary and an `interrupted`
  line are printed; exit 128 + the signal number (143 for SIGTERM), so a scheduler does not
  record a cut-short run as a success. The SDK's own handler would drain from inside the signal
  handler, possibly in the middle of a batch write, and exit 0.
"""

from __future__ import annotations

import contextvars
import copy
import functools
import gc
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import click
from singer_sdk import Target
from singer_sdk.exceptions import RecordsWithoutSchemaException
from singer_sdk.helpers.capabilities import PluginCapabilities
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.sinks import Sink

from target_pardot.batch_files import BATCH_CONFIG_SETTING, BatchStorage
from target_pardot.check import check_connection
from target_pardot.errors import QuotaExceededError, TargetPardotError
from target_pardot.reader import NumberedSingerReader
from target_pardot.run import PardotRun
from target_pardot.settings import CONFIG_SCHEMA, Settings
from target_pardot.sink import PardotSink

# Failures that stop a run with one line saying what to fix, rather than a traceback.
STOPPING_ERRORS: tuple[type[Exception], ...] = (
    TargetPardotError,
    InvalidInputLine,
    RecordsWithoutSchemaException,
)

# The SDK's command builds the target inside its own callback; the exit policy wrapped around
# that callback finds the target here, to report on a run that stopped.
_current_target: contextvars.ContextVar[TargetPardot | None] = contextvars.ContextVar(
    "target_pardot_current_target", default=None
)


class TargetPardot(Target):
    """Writes identify-shaped records into Salesforce Pardot (Account Engagement) prospects."""

    name = "target-pardot"
    # A copy: the SDK adds its own settings to a target's schema in place when it validates a
    # config, which would otherwise change settings.CONFIG_SCHEMA (and what the run's own
    # checks, DEFAULTS and the tests read from it) once a target was built in this process.
    config_jsonschema = copy.deepcopy(CONFIG_SCHEMA)
    config_jsonschema["properties"]["batch_config"] = BATCH_CONFIG_SETTING
    # BATCH messages (records in files, from taps with batch_config) are read by the reader.
    capabilities = [*Target.capabilities, PluginCapabilities.BATCH]
    default_sink_class = PardotSink
    message_reader_class = NumberedSingerReader

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = Settings.from_config(self.config)
        self._run: PardotRun | None = None
        self.stop_signal: int | None = None
        self._ending = False
        _current_target.set(self)
        if isinstance(self.message_reader, NumberedSingerReader):
            self.message_reader.pass_state = not self.settings.dry_run
            self.message_reader.batch_storage = BatchStorage.from_config(
                self.config.get("batch_config")
            )
        self._note_unused_sdk_settings()
        self._handle_stop_signals()

    @classmethod
    def advertised_settings(cls) -> frozenset[str]:
        """Settings in `--about`: the target's own and the SDK's built-in ones it supports."""
        schema = copy.deepcopy(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        return frozenset(schema["properties"])

    def _note_unused_sdk_settings(self) -> None:
        # Settings that are neither ours nor the SDK's were refused by Settings.from_config;
        # what is left outside --about is an SDK setting this target has no use for.
        unused = sorted(set(self.config) - self.advertised_settings())
        if unused:
            self.logger.warning(
                "singer-sdk settings that target-pardot does not use, ignored: %s",
                ", ".join(unused),
            )

    @property
    def pardot_run(self) -> PardotRun:
        if self._run is None:
            self._run = PardotRun(self.settings)
        return self._run

    def get_sink(
        self,
        stream_name: str,
        *,
        record: dict | None = None,
        schema: dict | None = None,
        key_properties: Sequence[str] | None = None,
    ) -> Sink:
        if schema is not None:
            # Authenticate and read the custom fields before the SDK builds a sink: a refused
            # credential or a wrong api_version is then reported once, by the exit policy,
            # instead of after the SDK's "Error initializing target sink" line.
            self.pardot_run.start()
        return super().get_sink(
            stream_name, record=record, schema=schema, key_properties=key_properties
        )

    def process_endofpipe(self) -> None:
        self._ending = True
        try:
            super().process_endofpipe()
            broken = self._take_input_error()
            if broken is not None:
                # What came before the broken line is applied and its STATE relayed: now the
                # run stops on that line (the exit policy reports it, summary included).
                raise broken
            if self._run is not None:
                self._run.finish()
        finally:
            self._ending = False

    def _take_input_error(self) -> Exception | None:
        reader = self.message_reader
        if not isinstance(reader, NumberedSingerReader):
            return None
        broken, reader.input_error = reader.input_error, None
        return broken

    def _handle_stop_signals(self) -> None:
        # Replaces the handlers the SDK installed a moment ago in PluginBase.__init__.
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop_signal)

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        reader = self.message_reader
        listening = isinstance(reader, NumberedSingerReader) and (reader.reading or self._ending)
        if not listening:
            # No run in progress (before input, after it, in a test process): nothing to
            # finish, so the signal keeps its usual meaning.
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        name = signal.Signals(signum).name
        if self.stop_signal is not None:
            self.logger.warning("%s again: still applying the records already read", name)
            return
        self.stop_signal = signum
        self.logger.warning(
            "Received %s: reading no more input; applying the records already read, then stopping",
            name,
        )
        if self._run is not None:
            # Calls under way finish, but one that fails is not retried: a backoff of minutes
            # would outlast the scheduler's patience (and end in SIGKILL).
            self._run.client.stop_retrying()
        reader.stop()  # last: while the reader waits for input, it raises into that wait

    def report_interruption(self, signum: int) -> None:
        """What a run stopped by a signal did, and what the next run does about the rest."""
        reader = self.message_reader
        numbered = isinstance(reader, NumberedSingerReader)
        last_line = reader.line_number if numbered else "?"
        batch_read = reader.batch_records_read if numbered else None
        batch_note = (
            f" (the BATCH message on line {last_line} was read only to its record "
            f"{batch_read}: the next run gets it again, whole)"
            if batch_read
            else ""
        )
        self.logger.error(
            "target-pardot interrupted by %s: no input after line %s was read%s. The records "
            "read before it were applied or rejected, and STATE was relayed only up to them; "
            "the next run resends the rest.",
            signal.Signals(signum).name,
            last_line,
            batch_note,
        )

    def close_run(self) -> None:
        if self._run is not None:
            self._run.close()

    def report_stop(self, error: Exception) -> None:
        """The summary and what to do next, for a run that a failure stopped."""
        if self._run is not None:
            self._run.finish()
        self.logger.error("target-pardot stopped: %s", error)
        broken = self._take_input_error()
        if broken is not None:
            # Applying what came before a broken input line failed: that line is news too.
            self.logger.error("target-pardot input also broken: %s", broken)
        if isinstance(error, QuotaExceededError) and self._run is not None:
            applied = self._run.report.applied()
            if error.running_import is None:
                self.logger.error(
                    "Pardot's daily API limit for this business unit is used up after %d "
                    "records were applied. The rest will be sent by the next run once the "
                    "limit resets (midnight in the Pardot account's time zone).",
                    applied,
                )
            else:
                self.logger.error(
                    "Pardot's daily API limit for this business unit was used up while the "
                    "run waited for import %d, which Pardot goes on running: its records are "
                    "applied but not counted among the %d records applied in this run. The "
                    "next run, once the limit resets (midnight in the Pardot account's time "
                    "zone), first waits for that import (it stays in the import state file), "
                    "does not create its prospects a second time, and sends the rest.",
                    error.running_import,
                    applied,
                )
        self.logger.error(
            "STATE was not advanced past the records that were not applied; the next run "
            "sends them again."
        )
        if self.stop_signal is not None:
            self.logger.error(
                "target-pardot interrupted by %s while Pardot calls were failing: they were "
                "not retried further.",
                signal.Signals(self.stop_signal).name,
            )

    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        # singer-sdk gives taps a --test but not targets: this one checks the connection.
        command.params.append(
            click.Option(
                ["--test", "connection_test"],
                is_flag=True,
                help="Check the credentials, business unit, api_version against the account "
                "and lookup_field with a few reads, print what was checked, and exit (0 when "
                "all passed). Writes nothing and reads no input.",
            )
        )
        if command.callback is not None:
            command.callback = _with_connection_test(_with_exit_policy(command.callback))
        for param in command.params:
            if param.name == "config" and param.callback is not None:
                param.callback = _with_config_file_check(param.callback)
        return command

    def check_connection(self) -> bool:
        return check_connection(self.settings, click.echo)


def config_file_problem(path: str) -> str | None:
    """What keeps the `--config` file at `path` from being read as settings, or None.

    The SDK reads the files while click parses the options, before its own error handling is in
    place: a missing file or one that is not JSON ended in a traceback. The problem is named
    here instead; the message quotes no content, which may hold secrets.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return "was not found"
    except IsADirectoryError:
        return "is a directory"
    except UnicodeDecodeError:
        return "is not UTF-8 text"
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if not text.strip():
        return "is empty"
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as error:
        return f"is not JSON (line {error.lineno} column {error.colno}: {error.msg})"
    if not isinstance(settings, dict):
        kind = JSON_KINDS.get(type(settings), "value")
        return f"holds a JSON {kind}, not an object"
    return None


# What a config file holding a JSON value other than an object holds, in JSON's words.
JSON_KINDS: dict[type, str] = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _with_config_file_check(callback: Callable[..., Any]) -> Callable[..., Any]:
    """The SDK's `--config` callback, after a check that stops with one line per bad file."""

    @functools.wraps(callback)
    def read(ctx: click.Context, param: click.Parameter, value: Sequence[str]) -> Any:
        problems = [
            f"config file {path} {problem}"
            for path in value or ()
            if path != "ENV" and (problem := config_file_problem(path))
        ]
        for problem in problems:
            TargetPardot.logger.error(
                "%s: --config takes a file holding a JSON object of settings, or ENV for "
                "TARGET_PARDOT_* variables",
                problem,
            )
        bad_variables = environment_problems(os.environ) if "ENV" in (value or ()) else []
        for problem in bad_variables:
            TargetPardot.logger.error("%s", problem)
        if problems or bad_variables:
            ctx.exit(1)
        return callback(ctx, param, value)

    return read


def environment_problems(environ: Mapping[str, str]) -> list[str]:
    """TARGET_PARDOT_* variables of whole-number settings that are no whole number.

    singer-sdk converts them with int() while reading `--config ENV`, and `abc` ended in its
    ValueError traceback, naming neither the variable nor the setting.
    """
    problems = []
    for name, spec in CONFIG_SCHEMA["properties"].items():
        variable = f"TARGET_PARDOT_{name.upper()}"
        text = environ.get(variable)
        if text is None or "integer" not in spec.get("type", ()):
            continue
        try:
            int(text)
        except ValueError:
            problems.append(f"{variable} must be a whole number for setting {name} (got {text!r})")
    return problems


def _with_connection_test(callback: Callable[..., Any]) -> Callable[..., Any]:
    """The SDK's command callback, or with --test the connection check instead of a run."""

    @functools.wraps(callback)
    def run(*args: Any, connection_test: bool = False, **kwargs: Any) -> Any:
        if not connection_test or kwargs.get("about"):
            return callback(*args, **kwargs)
        # The config as the SDK's own invoke reads it: files, or ENV for TARGET_PARDOT_*.
        config = kwargs.get("config")
        target = TargetPardot(
            config=getattr(config, "config", None),
            parse_env_config=bool(getattr(config, "parse_env", False)),
            validate_config=True,
        )
        sys.exit(0 if target.check_connection() else 1)

    return run


def _with_exit_policy(callback: Callable[..., Any]) -> Callable[..., Any]:
    """The SDK's command callback, ending each kind of run as the module docstring says."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        # What exists now (every module, the SDK's and the HTTP libraries' objects) lives as
        # long as the process. Frozen, it is left out of the cyclic collector's full passes,
        # which otherwise walk it again and again while records stream through: about a third
        # of a second of CPU per 100,000 records. Records and everything made later are
        # collected as usual.
        gc.freeze()
        # Records are trees of dicts and lists, freed by reference counting the moment a batch
        # is done; cycles are rare. Collecting young objects every 50,000 allocations instead of
        # every 700 saves about a tenth of the target's CPU and holds back only cyclic garbage.
        gc.set_threshold(50_000, 20, 100)
        token = _current_target.set(None)
        try:
            result = callback(*args, **kwargs)
            target = _current_target.get()
            if target is not None and target.stop_signal is not None:
                target.report_interruption(target.stop_signal)
                sys.exit(128 + target.stop_signal)
            return result
        except STOPPING_ERRORS as error:
            target = _current_target.get()
            if target is None:
                raise
            target.report_stop(error)
            # Told to stop, it stopped: a scheduler should see the signal's exit code.
            sys.exit(1 if target.stop_signal is None else 128 + target.stop_signal)
        finally:
            target = _current_target.get()
            if target is not None:
                target.close_run()
            _current_target.reset(token)

    return run
